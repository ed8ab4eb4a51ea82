"""The auditor's desk: /audit/ and its exports, who may open them, and the
entries people leave by signing in and out and by changing things in the admin."""

from __future__ import annotations

import csv
import html
import importlib
import io
import json
from datetime import datetime
from typing import Any
from unittest import mock

from django.apps import apps
from django.contrib.auth.models import Group
from django.test import AsyncClient, Client
from django.utils import timezone

import pytest

from callbot.calls import audit, auditseal, auditverify, services
from callbot.calls.models import AuditEntry, Call
from dashboard.auditwords import in_words
from dashboard.permissions import Role
from dashboard.roles import upsert_user
from tests.calls.test_ingest import P2P, ingest
from tests.dashboard.conftest import PASSWORDS, ensure_roles
from tests.factories import CallFactory, MeetingFactory

pytestmark = pytest.mark.django_db

URLS = ("/audit/", "/audit/export.csv", "/audit/export.jsonl")


@pytest.fixture(autouse=True)
def audit_readers(db: Any) -> None:
    """The Admin and Auditor groups may read the trail (a transactional test's
    flush removed what the migration granted)."""
    ensure_roles()
    migration = importlib.import_module("dashboard.migrations.0003_audit_trail_readers")
    migration.grant(apps, None)


@pytest.fixture(autouse=True)
def signing(settings: Any) -> Any:
    settings.AUDIT_SIGNING_KEY = auditseal.new_private_pem()
    settings.AUDIT_SIGNING_KEY_GENERATE = False
    return auditseal.signing_key().public_key()


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body(response: Any) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return str(response.content.decode())


# --- who may open what ----------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in_from_every_audit_url(
    client: Client,
) -> None:
    for url in URLS:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("alice", 200),  # superuser
        ("ada", 200),  # the Admin role
        ("carol", 200),  # the Auditor role
        ("bob", 403),  # supervisors act on calls; they do not audit
        ("dave", 403),  # no role
    ],
)
def test_each_role_on_every_audit_url(
    who: str, status: int, request: pytest.FixtureRequest
) -> None:
    client = signed_in(request.getfixturevalue(who))
    for url in URLS:
        response = client.get(url)
        assert response.status_code == status, url
        body(response)  # a stream is read to its end
    exports = AuditEntry.objects.filter(action="export.audit", actor_name=who)
    assert exports.count() == (2 if status == 200 else 0)


def test_auditors_act_on_nothing_here(carol: Any) -> None:
    client = signed_in(carol)
    for url in URLS:
        assert client.post(url).status_code == 405, url


def test_the_nav_shows_audit_only_to_those_who_may_open_it(
    carol: Any, bob: Any
) -> None:
    assert 'href="/audit/"' in signed_in(carol).get("/").content.decode()
    assert 'href="/audit/"' not in signed_in(bob).get("/").content.decode()


# --- the page ---------------------------------------------------------------------------


def at(day: str) -> Any:
    moment = timezone.make_aware(datetime.fromisoformat(day))
    return mock.patch("callbot.calls.auditmodels.timezone.now", return_value=moment)


@pytest.fixture
def trail(bob: Any, carol: Any) -> dict[str, Any]:
    call = CallFactory(subject="Quarterly review")
    with at("2026-03-01T10:00"):
        audit.record(
            bob, "hang_up", "Quarterly review", call, outcome="requested", detail={}
        )
    with at("2026-03-02T10:00"):
        audit.record(
            carol,
            "mute_participant",
            "Ana",
            call,
            outcome="refused",
            detail={"code": "no_permission", "message": "Auditors act on nothing."},
        )
    with at("2026-03-05T10:00"):
        audit.record(None, "answer", "+15550100", outcome="completed", detail={})
    return {"call": call}


def rows(response: Any) -> int:
    """Rows of the trail's table (0 when the page says none match)."""
    page = response.content.decode()
    if "<tbody>" not in page:
        return 0
    return page.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")


def test_the_page_lists_the_trail_newest_first_with_links_to_calls(
    carol: Any, trail: dict[str, Any]
) -> None:
    page = signed_in(carol).get("/audit/?until=2026-03-31").content.decode()
    table = page.split("<tbody>")[1]
    assert table.index("answer") < table.index("mute_participant")
    assert table.index("mute_participant") < table.index("hang_up")
    assert f'href="/calls/{trail["call"].pk}/"' in page
    assert '<span class="role">bot</span>' in page
    # Each entry's detail in words, with the exact JSON one click away.
    assert "refused (no_permission): Auditors act on nothing." in page
    assert "<summary>JSON</summary>" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=bob", 1),
        ("actor=callbot", 1),
        ("action=mute_participant", 1),
        ("outcome=refused", 1),
        ("since=2026-03-02&until=2026-03-31", 2),
        ("until=2026-03-02", 2),
        ("since=2026-03-02&until=2026-03-02", 1),
        ("actor=nobody", 0),
        ("by=people&until=2026-03-31", 2),
        ("by=bot", 1),
    ],
)
def test_filters_narrow_the_trail(
    carol: Any, trail: dict[str, Any], query: str, expected: int
) -> None:
    response = signed_in(carol).get(f"/audit/?{query}")
    assert response.status_code == 200
    assert rows(response) == expected


def test_the_call_filter_keeps_the_call_entries(
    carol: Any, trail: dict[str, Any]
) -> None:
    response = signed_in(carol).get(f"/audit/?call={trail['call'].pk}")
    assert rows(response) == 2


def test_a_bad_filter_is_said_and_an_export_refuses_it(
    carol: Any, trail: dict[str, Any]
) -> None:
    client = signed_in(carol)
    page = client.get("/audit/?since=2026-03-05&until=2026-03-01")
    assert "is after" in page.content.decode()
    assert rows(page) == 0
    export = client.get("/audit/export.csv?call=abc")
    assert export.status_code == 400
    assert b"call" in export.content


# --- exports ----------------------------------------------------------------------------


def test_the_jsonl_export_streams_and_verifies_with_the_public_key(
    carol: Any, trail: dict[str, Any], signing: Any
) -> None:
    response = signed_in(carol).get("/audit/export.jsonl")
    assert response.streaming
    assert "attachment" in response["Content-Disposition"]
    text = body(response)
    report = auditverify.verify_file(io.StringIO(text), signing)
    assert report.ok
    # The export's own entry is written first, and sealed with the rest.
    assert report.entries == AuditEntry.objects.count()
    assert AuditEntry.objects.filter(action="export.audit", actor_name="carol").exists()


def test_a_filtered_export_holds_the_matching_entries_and_says_so(
    carol: Any, trail: dict[str, Any], signing: Any
) -> None:
    text = body(signed_in(carol).get("/audit/export.jsonl?outcome=refused"))
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["filtered"] is True
    entries = [line for line in lines if line["type"] == "entry"]
    assert [e["action"] for e in entries] == ["mute_participant"]
    assert auditverify.verify_file(io.StringIO(text), signing).ok


def test_the_csv_export_has_a_row_per_entry(carol: Any, trail: dict[str, Any]) -> None:
    text = body(signed_in(carol).get("/audit/export.csv?actor=bob"))
    lines = text.splitlines()
    assert lines[0].startswith("sequence,created_at,actor_name")
    assert len(lines) == 2
    assert ",bob," in lines[1]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_served_over_asgi_the_export_is_an_async_stream(
    carol: Any, signing: Any
) -> None:
    client = AsyncClient()
    await client.aforce_login(carol)
    response = await client.get("/audit/export.jsonl")
    assert response.status_code == 200
    assert response.is_async
    chunks = [chunk async for chunk in response.streaming_content]
    text = b"".join(chunks).decode()
    assert json.loads(text.splitlines()[0])["type"] == "header"


# --- entries people leave ---------------------------------------------------------------


def test_signing_in_failing_and_signing_out_are_audited(bob: Any) -> None:
    client = Client(REMOTE_ADDR="192.0.2.7")
    client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    client.post("/accounts/login/", {"username": "bob", "password": PASSWORDS["bob"]})
    client.post("/accounts/logout/")
    entries = list(
        AuditEntry.objects.filter(action__in=["sign_in", "sign_out"])
        .order_by("sequence")
        .values_list("action", "outcome", "actor_name", "actor_id", "client_ip")
    )
    assert entries == [
        ("sign_in", "failed", "bob", None, "192.0.2.7"),
        ("sign_in", "succeeded", "bob", bob.pk, "192.0.2.7"),
        ("sign_out", "succeeded", "bob", bob.pk, "192.0.2.7"),
    ]
    assert "wrong" not in json.dumps(
        list(AuditEntry.objects.values("detail", "target"))
    )


def test_admin_changes_are_audited_with_who_and_what(alice: Any) -> None:
    client = signed_in(alice)
    client.post("/admin/auth/group/add/", {"name": "Night shift"})
    meeting = MeetingFactory(subject="Standup")
    changed = client.post(
        f"/admin/calls/meeting/{meeting.pk}/change/",
        {"subject": "Daily standup", "message_id": "0"},
    )
    assert changed.status_code == 302
    group = Group.objects.get(name="Night shift")
    client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    entries = list(
        AuditEntry.objects.filter(action__startswith="admin_")
        .order_by("sequence")
        .values_list("action", "target", "actor_name")
    )
    assert entries[0] == ("admin_add", "auth.group: Night shift", "alice")
    assert ("admin_delete", "auth.group: Night shift", "alice") in entries
    assert ("admin_change", "calls.meeting: Daily standup", "alice") in entries
    change = AuditEntry.objects.get(action="admin_change")
    assert change.detail["object_id"] == str(meeting.pk)
    assert "Subject" in change.detail["change"][0]["changed"]["fields"]


def test_the_admin_offers_no_bulk_delete_and_no_deleting_calls(alice: Any) -> None:
    client = signed_in(alice)
    page = client.get("/admin/auth/group/").content.decode()
    assert "delete_selected" not in page
    call = CallFactory()
    assert client.get(f"/admin/calls/call/{call.pk}/delete/").status_code == 403


def test_users_saved_from_the_command_line_are_audited() -> None:
    ensure_roles()
    upsert_user("erin", Role.AUDITOR, password="erin-pw-12345")
    entry = AuditEntry.objects.get(action="user_created")
    assert (entry.actor_name, entry.target) == ("manage.py", "erin")
    assert entry.detail["role"] == "Auditor"
    assert entry.by_bot is False


# --- outcomes Graph settles through the call's state ------------------------------


def _words_of_outcome(page: str, kind: str) -> str:
    """The detail words of the (only) outcome row of ``kind`` on the page."""
    table = page.split("<tbody>")[1].split("</tbody>")[0]
    [row] = [
        r
        for r in table.split("<tr>")
        if f"<code>{kind}</code>" in r and "outcome of #" in r
    ]
    return row.split('<span class="words">')[1].split("</span>")[0]


@pytest.mark.parametrize(
    ("kind", "then", "outcome", "words"),
    [
        # Graph answers 202 with no body, then the call becomes established:
        # its notification carries no resultInfo.
        ("answer", ["call_established.json"], "completed", "“Established.”"),
        # The caller hung up first: Graph's reason, when it gives one...
        (
            "answer",
            ["call_terminated.json"],
            "failed",
            "Teams answered 200/4521, “Call ended by the other participant in "
            "peer-to-peer call.”",
        ),
        # ...and when it gives none.
        (
            "answer",
            ["call_rejected.json"],
            "failed",
            "“The call ended before it was set up.”",
        ),
        ("reject", ["call_rejected.json"], "completed", "“The call ended.”"),
        (
            "reject",
            ["call_terminated.json"],
            "completed",
            "Teams answered 200/4521, “Call ended by the other participant in "
            "peer-to-peer call.”",
        ),
    ],
)
def test_an_outcome_settled_by_the_calls_state_says_how_it_went(
    carol: Any,
    bob: Any,
    signing: Any,
    kind: str,
    then: list[str],
    outcome: str,
    words: str,
) -> None:
    """The audit page and its exports give an answer's (or a reject's) outcome
    the same detail as the others: Teams' code and words when its notification
    has them, else what the call's state said."""
    ingest("incoming_p2p_call.json")
    call = Call.objects.get(graph_id=P2P)
    params = {"reason": "busy"} if kind == "reject" else {}
    action = services.request_action(kind, actor=bob, call=call, params=params)
    for batch in then:
        ingest(batch)
    action.refresh_from_db()
    assert action.status == outcome

    client = signed_in(carol)
    page = client.get(f"/audit/?action={kind}&call={call.pk}").content.decode()
    assert _words_of_outcome(page, kind) == html.escape(words)

    text = body(client.get(f"/audit/export.jsonl?action={kind}&call={call.pk}"))
    [done] = [
        line
        for line in map(json.loads, text.splitlines())
        if line["type"] == "entry" and line["outcome"] == outcome
    ]
    assert in_words(done["detail"]) == words
    assert auditverify.verify_file(io.StringIO(text), signing).ok
    csv_text = body(client.get(f"/audit/export.csv?action={kind}&outcome={outcome}"))
    [row] = list(csv.DictReader(io.StringIO(csv_text)))
    assert in_words(json.loads(row["detail"])) == words


def test_an_outcome_stored_without_any_result_says_so() -> None:
    """Entries written before outcomes carried the call's state keep their
    detail (the chain proves it); the page says Teams gave nothing."""
    detail = {
        "action_id": 7,
        "request": 12,
        "result_code": None,
        "result_subcode": None,
        "result_message": "",
        "error_code": "",
        "operation_id": "",
        "attempts": 1,
    }
    assert in_words(detail) == "no result code or words from Teams"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=bad", "From: Enter a valid date."),
        ("until=2026-02-30", "To: Enter a valid date."),
        ("call=abc", "Call id: Enter a whole number."),
        ("by=nobody", "By: Select a valid choice."),
        ("since=2026-03-05&until=2026-03-01", "“From” is after “To”."),
    ],
)
def test_a_bad_filter_is_a_400_that_says_what_is_wrong_as_the_history_does(
    carol: Any, trail: dict[str, Any], query: str, message: str
) -> None:
    page = signed_in(carol).get(f"/audit/?{query}")
    assert page.status_code == 400
    text = page.content.decode()
    assert f'<li class="msg-error">{html.escape(message)}' in text
    assert rows(page) == 0
    assert "0 entries" not in text  # no count of a filter that was not run
