"""Pages: sign-in, what each role sees, meetings scheduling and joining, CSRF."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.test import Client

import pytest

from callbot.calls.models import Action, AuditEntry, Meeting
from tests.factories import CallFactory, MeetingFactory

pytestmark = pytest.mark.django_db

JOIN_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ5ZTY3ZjQtYWRiMi00MWY2"
    "LWE5ZjMtZjkxNjY0OTYxZTBl%40thread.v2/0?context=%7b%22Tid%22%3a%22c1a7e3d2-5b4f-"
    "4e6a-8d9c-0f1e2d3c4b5a%22%2c%22Oid%22%3a%2250b6a8b4-5d8a-4f4f-9a47-2f7f5f9d2c11%22%7d"
)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_signed_out_visitors_are_sent_to_the_sign_in_page(client: Client) -> None:
    for url in ("/", "/calls/1/", "/meetings/", "/settings/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(f"/accounts/login/?next={url}")


def test_signing_in_with_the_form_reaches_the_board(client: Client, bob: Any) -> None:
    page = client.get("/accounts/login/")
    assert b"csrfmiddlewaretoken" in page.content
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": "bob-pw-12345"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    assert b"Live calls" in response.content
    assert b'data-can-act="true"' in response.content


def test_an_account_without_a_role_gets_403(dave: Any) -> None:
    assert signed_in(dave).get("/").status_code == 403


def test_the_auditor_sees_the_call_without_any_control(carol: Any) -> None:
    call = CallFactory()
    response = signed_in(carol).get(f"/calls/{call.pk}/")
    assert response.status_code == 200
    assert b'data-can-act="false"' in response.content
    assert b"Supervisor actions" not in response.content
    assert b"data-act=" not in response.content


def test_the_supervisor_sees_controls_and_the_unmute_control(bob: Any) -> None:
    call = CallFactory()
    response = signed_in(bob).get(f"/calls/{call.pk}/")
    assert b"Supervisor actions" in response.content
    # Never offered: the socket's snapshot carries the reason the page shows beside
    # it (tests/dashboard/test_snapshot_availability.py).
    assert b'data-kind="unmute_participant">Unmute someone</button>' in response.content
    assert signed_in(bob).get("/calls/999999/").status_code == 404


def live_kind_labels() -> dict[str, str]:
    """The words the live page paints for each call kind (``KIND_LABELS``)."""
    script = (settings.BASE_DIR / "static" / "dashboard" / "live.js").read_text()
    found = re.search(r"export const KIND_LABELS = \{([^}]*)\}", script)
    assert found is not None
    return dict(re.findall(r'(\w+): "([^"]*)"', found.group(1)))


@pytest.mark.parametrize("kind", ["peer_to_peer", "group", "meeting"])
def test_the_call_page_first_paints_the_kind_in_the_live_rows_words(
    bob: Any, kind: str
) -> None:
    call = CallFactory(kind=kind)
    response = signed_in(bob).get(f"/calls/{call.pk}/")

    words = live_kind_labels()[kind]
    assert f'<dd id="f-kind">{words}</dd>'.encode() in response.content


def test_an_ended_call_shows_the_supervisor_one_line_instead_of_its_controls(
    bob: Any,
) -> None:
    ended = signed_in(bob).get(f"/calls/{CallFactory(state='terminated').pk}/")
    live = signed_in(bob).get(f"/calls/{CallFactory(state='established').pk}/")

    assert b'id="controls" data-reasons hidden>' in ended.content
    assert b'id="controls-ended" role="status">The call has ended' in ended.content
    assert b'id="controls" data-reasons>' in live.content
    assert b'id="controls-ended" role="status" hidden>' in live.content


def test_bot_settings_are_for_admins_and_show_no_secret(
    alice: Any, bob: Any, settings: Any
) -> None:
    settings.GRAPH_CLIENT_SECRET = "s3cr3t-value"
    assert signed_in(bob).get("/settings/").status_code == 403
    response = signed_in(alice).get("/settings/")
    assert response.status_code == 200
    assert b"Calling webhook" in response.content
    assert b"s3cr3t-value" not in response.content


def test_a_supervisor_schedules_a_meeting_from_its_join_link(bob: Any) -> None:
    response = signed_in(bob).post(
        "/meetings/",
        {
            "subject": "Weekly ops",
            "join_web_url": JOIN_URL,
            "starts_at": "2031-05-01T09:00",
            "ends_at": "2031-05-01T10:00",
            "auto_join": "on",
        },
    )
    meeting = Meeting.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/meetings/{meeting.pk}/"
    assert (meeting.subject, meeting.auto_join) == ("Weekly ops", True)
    assert meeting.thread_id.startswith("19:meeting_")
    assert AuditEntry.objects.filter(actor=bob, action="save_meeting").exists()
    listing = signed_in(bob).get("/meetings/")
    assert b"Weekly ops" in listing.content


def test_a_bad_join_link_is_explained_on_the_form(bob: Any) -> None:
    response = signed_in(bob).post(
        "/meetings/", {"join_web_url": "https://example.com/not-teams"}
    )
    assert response.status_code == 200
    assert b"Not a Teams join link" in response.content
    assert not Meeting.objects.exists()


def test_the_auditor_can_neither_schedule_nor_join(
    carol: Any, enqueued: list[int]
) -> None:
    meeting = MeetingFactory()
    client = signed_in(carol)
    assert client.get(f"/meetings/{meeting.pk}/").status_code == 200
    assert b"Join now" not in client.get(f"/meetings/{meeting.pk}/").content
    assert client.post("/meetings/", {"join_web_url": JOIN_URL}).status_code == 403
    assert client.post(f"/meetings/{meeting.pk}/join").status_code == 403
    assert not Action.objects.exists()
    assert enqueued == []


def test_join_now_queues_a_join_action(
    bob: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    meeting = MeetingFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(bob).post(f"/meetings/{meeting.pk}/join", follow=True)
    action = Action.objects.get()
    assert (action.kind, action.status, action.requested_by) == (
        "join_meeting",
        "queued",
        bob,
    )
    assert enqueued == [action.pk]
    assert b"Joining" in response.content


def test_forms_refuse_a_post_without_the_csrf_token(bob: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    meeting = MeetingFactory()
    assert client.post(f"/meetings/{meeting.pk}/join").status_code == 403
    assert client.post("/accounts/logout/").status_code == 403
    assert not Action.objects.exists()
