"""The call history: who may see it, filters and search, keyset pages, counts,
time zones, the no-JavaScript form, and the CSV/JSON Lines exports (page and
command), each export audited."""

from __future__ import annotations

import csv
import io
import json
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

import pytest

from callbot.calls.models import AuditEntry, Call, Recording
from callbot.calls.states import CallDirection, CallKind, CallOutcome, CallState
from callbot.ivr.models import IvrSession
from dashboard.history_query import (
    HistoryFilterError,
    HistoryFilters,
    Sort,
    count_matches,
    history_page,
    matching_calls,
)
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

URLS = ("/history/", "/history/export.csv", "/history/export.jsonl")


def body(response: Any) -> bytes:
    """A streamed response read whole (a plain stream under the test client)."""
    return b"".join(response)


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_call(at: datetime, **fields: Any) -> Call:
    """A call started at ``at`` (``created_at`` is set on insert, so moved after),
    with no caller name unless given (the factory's random one could match a
    search meant for another call)."""
    fields.setdefault("source_display", "")
    fields.setdefault("state", CallState.TERMINATED)
    if fields["state"] == CallState.TERMINATED:
        fields.setdefault("established_at", at + timedelta(seconds=2))
        fields.setdefault("terminated_at", at + timedelta(seconds=62))
    call: Call = CallFactory(**fields)
    Call.objects.filter(pk=call.pk).update(created_at=at)
    call.refresh_from_db()
    return call


def ids(response: Any) -> list[int]:
    return [row.id for row in response.context["rows"]]


NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


# --- who may see it ----------------------------------------------------------------
def test_each_url_as_each_role_and_anonymous(
    client: Client, alice: Any, ada: Any, bob: Any, carol: Any, dave: Any
) -> None:
    make_call(NOW)
    for url in URLS:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"/accounts/login/?next={url}")
        assert signed_in(dave).get(url).status_code == 403, url
        for user in (alice, ada, bob, carol):
            response = signed_in(user).get(url)
            assert response.status_code == 200, (url, user.username)
            if response.streaming:
                body(response)
    # Every export made is on the audit trail (once its last row is sent):
    # 4 users x 2 formats.
    assert AuditEntry.objects.filter(action="export.history").count() == 8


def test_the_history_is_read_only(carol: Any) -> None:
    response = signed_in(carol).post("/history/", {"q": "anything"})
    assert response.status_code == 405


def test_nav_links_to_the_history(carol: Any) -> None:
    page = signed_in(carol).get("/").content.decode()
    assert 'href="/history/"' in page


def test_export_links_are_offered_only_when_calls_match(carol: Any) -> None:
    make_call(NOW, subject="Budget review")
    client = signed_in(carol)

    found = client.get("/history/?q=budget").content.decode()
    none = client.get("/history/?q=nobody-at-all").content.decode()

    assert "/history/export.csv?q=budget" in found
    assert "No calls match these filters." in none
    assert "/history/export.csv" not in none


# --- the rows -------------------------------------------------------------------------
def test_a_peer_to_peer_call_without_a_roster_counts_as_one_to_one(carol: Any) -> None:
    """As the board says it: Graph sends no roster for most 1:1 calls, and a 0
    there would read as nobody on the call."""
    lone = make_call(NOW - timedelta(hours=1), kind=CallKind.PEER_TO_PEER)
    meeting = make_call(NOW, kind=CallKind.MEETING, subject="Empty bridge")

    response = signed_in(carol).get("/history/")

    rows = {row.id: row for row in response.context["rows"]}
    assert (rows[lone.pk].participants, rows[lone.pk].people_text) == (0, "1:1")
    assert rows[meeting.pk].people_text == "0"
    assert '<td class="num">1:1</td>' in response.content.decode()


def test_rows_are_newest_first_with_what_happened(carol: Any, bob: Any) -> None:
    old = make_call(NOW - timedelta(hours=2), source_display="Old Caller")
    new = make_call(
        NOW - timedelta(hours=1),
        kind=CallKind.MEETING,
        subject="Incident bridge",
        result_code=200,
        result_subcode=5001,
    )
    ParticipantFactory.create_batch(3, call=new)
    ActionFactory(call=new, kind="mute_participant", requested_by=bob)
    ActionFactory(call=new, kind="play_prompt")
    ActionFactory(call=new, kind="play_prompt")
    Recording.objects.create(
        action=ActionFactory(call=new, kind="record_response"),
        call=new,
        audio="recordings/x.wav",
        size=10,
    )
    response = signed_in(carol).get("/history/")
    assert ids(response) == [new.pk, old.pk]
    page = response.content.decode()
    row = response.context["rows"][0]
    assert (row.participants, row.recordings, row.duration_seconds) == (3, 1, 60)
    assert row.actions_text == "mute_participant, play_prompt x2, record_response"
    # The page shows the timeline's words; the export keeps the values.
    assert "Mute Participant, Play Prompt x2, Record Response" in page
    assert row.actors == ["bob"]
    assert row.result == "Conversation ended (200/5001)"
    assert f'href="/calls/{new.pk}/"' in page
    assert "Incident bridge" in page
    assert "Conversation ended (200/5001)" in page
    assert "2 calls match" in page
    # Kinds in the board's words, not their stored values.
    assert "<td>Meeting</td>" in page
    assert "<td>Peer-to-peer</td>" in page
    assert "<td>peer_to_peer</td>" not in page


def test_summary_columns_follow_the_call_through_ingest() -> None:
    from tests.dashboard.sockets import ingest

    ingest("incoming_p2p_call.json", "h1")
    call = Call.objects.get()
    assert (call.outcome, call.duration_seconds) == (CallOutcome.LIVE, 0)
    assert (call.source_display, call.source_id) == (
        "Ana Lopez",
        "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170",
    )
    ingest("call_established.json", "h2")
    Call.objects.filter(pk=call.pk).update(
        established_at=timezone.now() - timedelta(seconds=90)
    )
    ingest("call_hung_up.json", "h3")
    call.refresh_from_db()
    assert call.outcome == CallOutcome.ANSWERED
    assert 89 <= call.duration_seconds <= 91


def test_outcomes_follow_state_and_result_code() -> None:
    call = make_call(NOW, result_code=480, result_subcode=10037)
    assert call.outcome == CallOutcome.FAILED
    call.result_code, call.result_subcode = 0, 7015
    call.save(update_fields=["result_code", "result_subcode"])
    call.refresh_from_db()
    assert call.outcome == CallOutcome.TRANSFERRED
    never = make_call(NOW, established_at=None, direction=CallDirection.OUTGOING)
    assert (never.outcome, never.duration_seconds) == (CallOutcome.UNANSWERED, 0)
    rang_out = make_call(
        NOW,
        established_at=None,
        direction=CallDirection.INCOMING,
        result_code=408,
        result_subcode=1106,
    )
    assert rang_out.outcome == CallOutcome.ABANDONED


# --- filters and search -------------------------------------------------------------------
def test_each_filter_narrows_the_history(carol: Any, bob: Any) -> None:
    p2p = make_call(NOW - timedelta(minutes=5), direction=CallDirection.OUTGOING)
    group = make_call(
        NOW - timedelta(minutes=4),
        kind=CallKind.GROUP,
        terminated_at=NOW - timedelta(minutes=4) + timedelta(seconds=902),
    )
    failed = make_call(NOW - timedelta(minutes=3), result_code=500, result_subcode=1005)
    live = make_call(NOW - timedelta(minutes=2), state=CallState.ESTABLISHED)
    ActionFactory(call=group, kind="invite", requested_by=bob)
    Recording.objects.create(
        action=ActionFactory(call=failed, kind="record_response"),
        call=failed,
        audio="recordings/y.wav",
        size=10,
    )
    IvrSession.objects.create(
        call=p2p, flow_start="menu", path=" menu menu:1 sales ", status="completed"
    )
    client = signed_in(carol)
    cases = {
        "kind=group": [group],
        "direction=outgoing": [p2p],
        "outcome=failed": [failed],
        "outcome=live": [live],
        "min_duration=600": [group],
        "max_duration=0&outcome=live": [live],
        "actor=bob": [group],  # a username, as the audit trail takes it
        f"actor={bob.pk}": [group],  # or an id, as older links have it
        "action=record_response": [failed],
        "recording=yes": [failed],
        "recording=no": [live, group, p2p],
        "ivr=menu:1": [p2p],
        "ivr=sales": [p2p],
        "ivr=menu:2": [],
        "sort=longest&kind=group": [group],
    }
    for query, expected in cases.items():
        response = client.get(f"/history/?{query}")
        assert response.status_code == 200, query
        assert ids(response) == [c.pk for c in expected], query
    for unknown in ("nobody-here", "99999999999999999999"):
        refused = client.get(f"/history/?actor={unknown}")
        assert refused.status_code == 400, unknown
        assert "Select a valid choice" in refused.content.decode(), unknown


def test_search_finds_anyone_who_was_ever_on_the_call(carol: Any) -> None:
    call = make_call(NOW, source_display="Ana Lopez", source_id="+14255550100")
    gone = ParticipantFactory(
        call=call,
        display_name="Lee Okafor",
        identity_id="0f1e2d3c-aaaa-bbbb-cccc-123456789abc",
        left_at=NOW,
    )
    ParticipantFactory(
        call=call,
        display_name="Phone guest",
        identity_id="+4930123456",
        identity_kind="phone",
    )
    other = make_call(NOW - timedelta(hours=1), subject="Quarterly review")
    client = signed_in(carol)
    for q in (
        "okafor",  # a participant who left, not the caller
        gone.identity_id.upper(),
        "+49 30 123456",  # a phone number as people write it
        "ana lop",
        "4255550100",
        call.graph_id,
    ):
        assert ids(client.get("/history/", {"q": q})) == [call.pk], q
    assert ids(client.get("/history/", {"q": "quarterly"})) == [other.pk]
    # A whole id is matched exactly, in any case and with braces.
    braced = "{" + gone.identity_id.upper() + "}"
    assert ids(client.get("/history/", {"q": braced})) == [call.pk]
    assert ids(client.get("/history/", {"q": gone.identity_id[:-1] + "d"})) == []
    assert ids(client.get("/history/", {"q": "nobody-here"})) == []


def test_periods_and_dates_are_days_in_the_viewer_zone(
    carol: Any, frozen: datetime
) -> None:
    # 09:00 UTC on 30 Nov is 20:00 in Auckland (UTC+13): "today" there began at
    # 11:00 UTC on 29 Nov.
    today = make_call(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    yesterday = make_call(datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    week = make_call(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    older = make_call(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    client = signed_in(carol)
    zone = "Pacific/Auckland"
    get = lambda **p: ids(client.get("/history/", {"tz": zone, **p}))  # noqa: E731
    assert get(period="today") == [today.pk]
    assert get(period="yesterday") == [yesterday.pk]
    assert get(period="7d") == [today.pk, yesterday.pk, week.pk]
    # 12:00 UTC on 20 Nov was 01:00 on 21 Nov in Auckland.
    assert get(date_from="2026-11-21", date_to="2026-11-21") == [older.pk]
    assert get(date_from="2026-11-20", date_to="2026-11-20") == []
    assert get(date_from="2026-11-26") == [today.pk, yesterday.pk]


def test_times_show_in_the_viewer_zone_with_dates(carol: Any) -> None:
    make_call(datetime(2026, 1, 15, 23, 30, tzinfo=UTC))
    client = signed_in(carol)
    berlin = client.get("/history/", {"tz": "Europe/Berlin"}).content.decode()
    assert "Fri 16 Jan 2026, 00:30:00" in berlin
    assert "Times in Europe/Berlin." in berlin
    client.cookies["tz"] = "America%2FNew_York"  # as history.js writes it
    cookie = client.get("/history/").content.decode()
    assert "Thu 15 Jan 2026, 18:30:00" in cookie


def test_the_form_works_without_javascript_and_bad_input_is_a_400(carol: Any) -> None:
    page = signed_in(carol).get("/history/").content.decode()
    assert '<form method="get" action="/history/"' in page
    for name in ("q", "period", "kind", "outcome", "actor", "action", "recording", "ivr", "sort"):  # fmt: skip
        assert f'name="{name}"' in page
    for query, message in (
        ("q=ab", "at least 3 characters"),
        ("min_duration=-1", "greater than or equal to 0"),
        ("min_duration=60&max_duration=10", "shortest duration is above"),
        ("tz=Mars/Base", "No time zone"),
        ("period=today&date_from=2026-01-01", "a period or dates"),
        ("after=garbage", "Not a page cursor"),
        ("kind=bogus", "Select a valid choice"),
    ):
        response = signed_in(carol).get(f"/history/?{query}")
        assert response.status_code == 400, query
        assert message in response.content.decode(), query


# --- pages and counts ----------------------------------------------------------------
def test_keyset_pages_walk_forward_and_back_without_duplicates_or_gaps() -> None:
    calls = [make_call(NOW - timedelta(minutes=i // 3)) for i in range(23)]
    # Ties on the start (three calls a minute) are broken by id.
    for sort in Sort:
        everything = matching_calls(HistoryFilters())
        expected = [c.pk for c in history_page(everything, sort, size=100).calls]
        assert sorted(expected) == sorted(c.pk for c in calls)
        seen: list[int] = []
        page = history_page(everything, sort, size=5)
        pages = [page]
        seen += [c.pk for c in page.calls]
        assert page.before is None
        while page.after:
            page = history_page(everything, sort, after=page.after, size=5)
            pages.append(page)
            seen += [c.pk for c in page.calls]
        assert seen == expected, sort
        back: list[int] = [c.pk for c in page.calls]
        while page.before:
            page = history_page(everything, sort, before=page.before, size=5)
            back = [c.pk for c in page.calls] + back
        assert back == expected, sort


def test_next_and_previous_links_carry_the_filters(carol: Any) -> None:
    for i in range(60):
        make_call(NOW - timedelta(minutes=i), kind=CallKind.GROUP)
    make_call(NOW, kind=CallKind.MEETING)
    client = signed_in(carol)
    first = client.get("/history/", {"kind": "group"})
    assert len(ids(first)) == 50
    assert first.context["prev_query"] == ""
    assert "60 calls match" in first.content.decode()
    second = client.get(f"/history/?{first.context['next_query']}")
    assert "kind=group" in first.context["next_query"]
    assert len(ids(second)) == 10
    assert set(ids(first)).isdisjoint(ids(second))
    assert second.context["next_query"] == ""
    back = client.get(f"/history/?{second.context['prev_query']}")
    assert ids(back) == ids(first)


def test_the_count_is_exact_up_to_its_bound(
    carol: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        make_call(NOW - timedelta(minutes=i))
    assert count_matches(matching_calls(HistoryFilters()), limit=3) == (3, True)
    assert count_matches(matching_calls(HistoryFilters()), limit=4) == (4, False)
    monkeypatch.setattr("dashboard.history.COUNT_LIMIT", 3)
    page = signed_in(carol).get("/history/").content.decode()
    assert "More than 3 calls match" in page


def test_filters_refuse_contradictions() -> None:
    with pytest.raises(HistoryFilterError, match="at least 3"):
        HistoryFilters(q="x")
    with pytest.raises(HistoryFilterError, match="IVR path"):
        HistoryFilters(ivr="menu 1")


# --- exports ------------------------------------------------------------------------
def test_csv_export_streams_the_filtered_rows_and_is_audited(carol: Any) -> None:
    group = make_call(NOW, kind=CallKind.GROUP, subject="Weekly sync")
    make_call(NOW - timedelta(hours=1))
    ParticipantFactory.create_batch(2, call=group)
    response = signed_in(carol).get(
        "/history/export.csv", {"kind": "group", "tz": "Europe/Berlin"}
    )
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [int(r["id"]) for r in rows] == [group.pk]
    assert rows[0]["subject"] == "Weekly sync"
    assert rows[0]["participants"] == "2"
    assert rows[0]["started_at"] == "2026-11-30T10:00:00+01:00"
    entry = AuditEntry.objects.get(action="export.history")
    assert (entry.actor, entry.outcome, entry.target) == (carol, "ok", "csv")
    assert entry.detail["rows"] == 1
    assert entry.detail["filters"] == {"kind": "group"}


def test_jsonl_export_is_one_object_a_line(carol: Any) -> None:
    calls = [make_call(NOW - timedelta(minutes=i)) for i in range(3)]
    response = signed_in(carol).get("/history/export.jsonl", {"sort": "oldest"})
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = body(response).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == [c.pk for c in reversed(calls)]
    assert (rows[0]["outcome"], rows[0]["duration_seconds"]) == ("answered", 60)
    assert AuditEntry.objects.get(action="export.history").detail["rows"] == 3


def test_export_with_bad_filters_is_a_400_and_not_audited(carol: Any) -> None:
    response = signed_in(carol).get("/history/export.csv", {"min_duration": "x"})
    assert response.status_code == 400
    assert b"min_duration" in response.content
    assert not AuditEntry.objects.filter(action="export.history").exists()
    assert signed_in(carol).get("/history/export.xml").status_code == 404


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_export_streams_a_chunk_at_a_time(
    carol: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connections
    from django.test import AsyncClient

    from asgiref.sync import sync_to_async

    from dashboard import history_export

    monkeypatch.setattr(history_export, "CHUNK", 2)
    calls = await sync_to_async(
        lambda: [make_call(NOW - timedelta(minutes=i)) for i in range(5)]
    )()
    client = AsyncClient()
    await client.aforce_login(carol)
    response = await client.get("/history/export.jsonl")
    assert response.streaming
    parts = [part async for part in response.streaming_content]
    assert len(parts) == 3  # 2 + 2 + 1 rows, each chunk one keyset query
    got = [json.loads(x)["id"] for part in parts for x in part.decode().splitlines()]
    assert got == [c.pk for c in calls]
    entry = await AuditEntry.objects.aget(action="export.history")
    assert (entry.outcome, entry.detail["rows"]) == ("ok", 5)
    # The stream read in asgiref's shared sync thread; the test client does not
    # close connections at request_finished as a server does, so close that
    # thread's here (else PostgreSQL's test database cannot be dropped).
    await sync_to_async(connections.close_all)()


def test_command_exports_with_the_same_filters(tmp_path: Path, bob: Any) -> None:
    group = make_call(NOW, kind=CallKind.GROUP)
    make_call(NOW - timedelta(hours=1))
    ActionFactory(call=group, kind="invite", requested_by=bob)
    target = tmp_path / "f.csv"
    err = io.StringIO()
    call_command(
        "export_history",
        "--format=csv",
        f"--output={target}",
        "--actor=bob",
        "--tz=UTC",
        stderr=err,
    )
    rows = list(csv.DictReader(target.open()))
    assert [int(r["id"]) for r in rows] == [group.pk]
    assert rows[0]["actors"] == "bob"
    assert "1/1" in err.getvalue()
    assert "1 calls written" in err.getvalue()
    entry = AuditEntry.objects.get(action="export.history")
    assert entry.actor_name == "manage.py export_history"
    assert entry.detail["filters"] == {"actor_id": bob.pk}
    assert entry.detail["rows"] == 1
    jsonl = tmp_path / "f.jsonl"
    call_command(
        "export_history", "--format=jsonl", f"--output={jsonl}", "--no-progress",
        "--as=bob", stderr=io.StringIO(),
    )  # fmt: skip
    assert len(jsonl.read_text().splitlines()) == 2
    assert AuditEntry.objects.filter(actor=bob, action="export.history").count() == 1


def test_command_refuses_bad_filters(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="min_duration"):
        call_command(
            "export_history", "--format=csv", f"--output={tmp_path / 'x'}",
            "--min-duration=soon",
        )  # fmt: skip
    with pytest.raises(CommandError, match="No user"):
        call_command(
            "export_history", "--format=csv", f"--output={tmp_path / 'x'}",
            "--actor=nobody",
        )  # fmt: skip


# --- common matches: probed per call, counted from the ids already read -----------
@pytest.fixture
def few_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two call ids are 'few': a third match makes a search or filter common."""
    import dashboard.history_query as history_query

    monkeypatch.setattr(history_query, "SEARCH_IDS", 2)
    monkeypatch.setattr(history_query, "READ_ROWS", 9)


def newest_first(calls: list[Call]) -> list[int]:
    return [
        c.pk for c in sorted(calls, key=lambda c: (c.created_at, c.pk), reverse=True)
    ]


def test_a_common_search_matches_what_a_rare_one_does(few_ids: None) -> None:
    hits = []
    for hour in range(3):
        call = make_call(NOW - timedelta(hours=hour))
        ParticipantFactory(call=call, display_name=f"Kenji Yamamoto {hour}")
        ParticipantFactory(call=call, display_name="Aiko Yamamoto")  # twice, once
        hits.append(call)
    hits.append(make_call(NOW - timedelta(hours=5), subject="YAMAMOTO's review"))
    ParticipantFactory(
        call=make_call(NOW - timedelta(hours=4)), display_name="Ana 100%"
    )
    make_call(NOW - timedelta(hours=6), subject="Yamamot0")
    calls = matching_calls(HistoryFilters(q="yamamoto"))
    page = history_page(calls, Sort.NEWEST, size=2)
    assert [c.pk for c in page.calls] == newest_first(hits)[:2]
    rest = history_page(calls, Sort.NEWEST, after=page.after or "", size=2)
    assert [c.pk for c in rest.calls] == newest_first(hits)[2:]
    # More than SEARCH_IDS distinct calls were read: the count needs no query.
    assert count_matches(calls, limit=2) == (2, True)
    assert count_matches(calls) == (4, False)

    # A single word is also compared whole with identity ids that are not GUIDs
    # (a guest's, an ACS user's): LIKE wildcards in it are literal characters.
    guests = []
    for hour in range(3):
        guests.append(make_call(NOW - timedelta(days=1, hours=hour)))
        ParticipantFactory(call=guests[-1], identity_id=f"8:acs:ab_cd{hour}%")
    ParticipantFactory(
        call=make_call(NOW - timedelta(days=2)), identity_id="8:acs:abXcd1Y"
    )
    found = matching_calls(HistoryFilters(q="8:ACS:ab_cd1%"))
    assert [c.pk for c in found] == [guests[1].pk]
    assert list(matching_calls(HistoryFilters(q="8:acs:ab%"))) == []


def test_a_common_filter_through_actions_pages_and_counts(
    few_ids: None, dave: Any, django_assert_num_queries: Any
) -> None:
    acted = []
    for hour in range(4):
        call = make_call(NOW - timedelta(hours=hour))
        ActionFactory(call=call, requested_by=dave, kind="mute_participant")
        ActionFactory(call=call, requested_by=dave, kind="mute_participant")
        acted.append(call)
    make_call(NOW - timedelta(minutes=30))
    calls = matching_calls(HistoryFilters(action_kind="mute_participant"))
    assert [c.pk for c in calls.order_by("-created_at", "-id")] == newest_first(acted)
    with django_assert_num_queries(0):
        assert count_matches(calls, limit=2) == (2, True)
    # With a second filter the ids read say nothing of the count: it is counted.
    both = matching_calls(
        HistoryFilters(action_kind="mute_participant", direction=acted[0].direction)
    )
    assert count_matches(both, limit=2) == (2, True)
    assert count_matches(both) == (4, False)


def test_a_rare_single_filter_is_counted_from_its_ids(
    dave: Any, django_assert_num_queries: Any
) -> None:
    call = make_call(NOW)
    ActionFactory(call=call, requested_by=dave)
    ActionFactory(call=call, requested_by=dave)
    make_call(NOW - timedelta(hours=1))
    calls = matching_calls(HistoryFilters(actor_id=dave.pk))
    with django_assert_num_queries(0):
        assert count_matches(calls) == (1, False)
    assert [c.pk for c in calls] == [call.pk]


def test_the_time_zone_picker_offers_every_zone(carol: Any) -> None:
    text = signed_in(carol).get("/history/").content.decode()
    picker = text.split('<datalist id="time-zones">')[1].split("</datalist>")[0]
    assert '<option value="Europe/Berlin">' in picker
    assert '<option value="America/Argentina/Buenos_Aires">' in picker
    assert picker.count("<option") == len(zoneinfo.available_timezones())
