"""The pages that start calls: place a call, join a meeting (asking before joining
twice), and the list of other calls a transfer or a move can use."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.utils.html import escape

import pytest

from callbot.calls.models import Action, AuditEntry, Meeting
from callbot.calls.params import PHONE_NEEDS_INSTANCE
from tests.factories import CallFactory, MeetingFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]

ANA = "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170"
SHORT = "https://teams.microsoft.com/meet/2345678901234?p=abcdEFGH"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_placing_a_call_queues_it_and_the_board_follows_it(
    bob: Any, enqueued: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(bob).post(
            "/calls/new/",
            {"target_kind": "user", "user_id": ANA, "display_name": "Ana Lopez"},
        )

    action = Action.objects.get(kind="place_call")
    assert response.status_code == 302
    assert response["Location"] == f"/?placing={action.pk}"
    assert action.parameters == {
        "target": {"user_id": ANA, "display_name": "Ana Lopez"}
    }
    assert enqueued == [action.pk]
    assert AuditEntry.objects.filter(actor=bob, action="place_call").exists()


@pytest.mark.django_db(transaction=True)
def test_a_placed_call_the_worker_already_made_opens_its_page(
    bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tasks sent on commit run before the view answers (in-process worker)."""
    call = CallFactory(direction="outgoing")

    def made(name: str, action_id: int) -> bool:
        Action.objects.filter(pk=action_id).update(call=call)
        return True

    monkeypatch.setattr("callbot.calls.enqueue.send", made)
    response = signed_in(bob).post(
        "/calls/new/", {"target_kind": "phone", "phone": "+1 425 555 0123"}
    )

    assert response["Location"] == f"/calls/{call.pk}/"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"target_kind": "user", "user_id": "ana"}, "is not an Azure AD object id"),
        ({"target_kind": "phone", "phone": "0425 555"}, "+E.164 form"),
        ({"target_kind": "user"}, "Give the person"),
    ],
)
def test_a_bad_target_is_shown_on_the_form(
    bob: Any, form: dict[str, str], error: str
) -> None:
    response = signed_in(bob).post("/calls/new/", form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Action.objects.exists()


def test_an_auditor_may_not_place_calls(carol: Any) -> None:
    client = signed_in(carol)
    assert client.get("/calls/new/").status_code == 403
    assert client.post("/calls/new/", {"target_kind": "user"}).status_code == 403


def test_the_place_form_offers_users_and_phones(bob: Any) -> None:
    page = signed_in(bob).get("/calls/new/").content.decode()

    assert 'data-kind="place_call"' in page
    assert "A phone number" in page


def test_without_an_application_instance_the_form_says_phones_cannot_be_called(
    bob: Any, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    client = signed_in(bob)

    page = client.get("/calls/new/").content.decode()
    response = client.post(
        "/calls/new/", {"target_kind": "phone", "phone": "+1 425 555 0123"}
    )

    assert 'id="phone-refused"' in page
    assert escape(PHONE_NEEDS_INSTANCE) in page
    assert response.status_code == 200
    assert escape(PHONE_NEEDS_INSTANCE) in response.content.decode()
    assert not Action.objects.exists()
    settings.GRAPH_APPLICATION_INSTANCE_ID = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
    assert 'id="phone-refused"' not in client.get("/calls/new/").content.decode()


def test_joining_by_short_link_goes_to_the_meeting_page(bob: Any) -> None:
    response = signed_in(bob).post("/meetings/join/", {"join_web_url": SHORT})

    meeting = Meeting.objects.get(join_meeting_id="2345678901234")
    assert response["Location"] == f"/meetings/{meeting.pk}/"
    assert Action.objects.get(kind="join_meeting").parameters == {
        "meeting_id": meeting.pk
    }


def test_joining_a_meeting_the_bot_is_in_asks_then_joins_again(bob: Any) -> None:
    meeting = Meeting.objects.create(join_meeting_id="2345678901234")
    live = CallFactory(kind="meeting", meeting=meeting)
    client = signed_in(bob)

    asked = client.post("/meetings/join/", {"join_web_url": SHORT})

    page = asked.content.decode()
    assert asked.status_code == 200
    assert "already in this meeting" in page
    assert f"/calls/{live.pk}/" in page
    assert not Action.objects.exists()

    again = client.post("/meetings/join/", {"join_web_url": SHORT, "again": "True"})
    assert again["Location"] == f"/meetings/{meeting.pk}/"
    assert Action.objects.filter(kind="join_meeting").count() == 1


def test_join_now_on_a_meeting_page_asks_before_joining_twice(bob: Any) -> None:
    meeting = MeetingFactory()
    CallFactory(kind="meeting", meeting=meeting)
    client = signed_in(bob)

    asked = client.post(f"/meetings/{meeting.pk}/join")
    assert asked["Location"] == f"/meetings/{meeting.pk}/?again=1"
    assert "Join again" in client.get(asked["Location"]).content.decode()
    assert not Action.objects.exists()

    client.post(f"/meetings/{meeting.pk}/join", {"again": "1"})
    assert Action.objects.filter(kind="join_meeting").count() == 1


def test_a_meeting_page_draws_each_call_row_with_its_state(bob: Any) -> None:
    """The page's script and its readers find a call's state on the row: a call
    already established when the page is drawn gets no later change of state, so
    the drawn row must carry it (the live updates set the same attribute)."""
    meeting = MeetingFactory()
    first = CallFactory(kind="meeting", meeting=meeting, state="established")
    second = CallFactory(kind="meeting", meeting=meeting, state="establishing")

    page = signed_in(bob).get(f"/meetings/{meeting.pk}/").content.decode()

    for call in (first, second):
        assert f'data-call-id="{call.pk}" data-state="{call.state}"' in page


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "Paste the meeting"),
        ({"join_web_url": "https://example.com/x"}, "Not a Teams join link"),
        ({"join_meeting_id": "12"}, "9 to 20 digits"),
        ({"join_web_url": SHORT, "join_meeting_id": "2345678901234"}, "not both"),
    ],
)
def test_a_bad_join_is_shown_on_the_form(
    bob: Any, form: dict[str, str], error: str
) -> None:
    response = signed_in(bob).post("/meetings/join/", form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Action.objects.exists()


def test_other_calls_lists_established_one_to_one_calls_with_a_known_party(
    carol: Any,
) -> None:
    this = CallFactory()
    usable = CallFactory(
        direction="outgoing", targets=[{"user_id": ANA, "display_name": "Ana"}]
    )
    CallFactory(state="terminated", targets=[{"user_id": ANA}])
    CallFactory(kind="meeting")
    CallFactory(source={"identity": {"guest": {"id": "g1"}}})

    body = signed_in(carol).get(f"/calls/{this.pk}/others").json()

    assert body == {
        "calls": [
            {"id": usable.pk, "name": "Ana", "kind": "user", "state": "established"}
        ]
    }
