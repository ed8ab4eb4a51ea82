"""The history's search by the shape of what was typed: words (prefixes of the
words of one person's name, or of the subject and caller), a phone number (the
start or the end of its digits), a whole id (exactly). The same results on SQLite
and PostgreSQL; on PostgreSQL each shape reads its own index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls.models import Call, Participant
from callbot.calls.states import CallState
from dashboard.history_query import (
    HistoryFilters,
    Sort,
    count_matches,
    history_page,
    matching_calls,
)
from dashboard.history_search import search_sql, tsquery
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def make_call(hours_ago: int, **fields: Any) -> Call:
    at = NOW - timedelta(hours=hours_ago)
    # No random caller name (the factory's Faker one): a "Kelly Smith" would
    # match a search for another call's "kelly".
    fields.setdefault("source_display", "")
    fields.setdefault("state", CallState.TERMINATED)
    fields.setdefault("established_at", at + timedelta(seconds=2))
    fields.setdefault("terminated_at", at + timedelta(seconds=62))
    call: Call = CallFactory(**fields)
    Call.objects.filter(pk=call.pk).update(created_at=at)
    return call


def found(q: str) -> list[int]:
    calls = matching_calls(HistoryFilters(q=q))
    return [c.pk for c in history_page(calls, Sort.NEWEST).calls]


def test_the_shape_decides_what_is_searched() -> None:
    assert search_sql("{0F1E2D3C-AAAA-BBBB-CCCC-123456789ABC}").shape == "id"
    assert search_sql("+49 (30) 123-456").shape == "phone"
    assert search_sql("Jane Yamamoto").shape == "words"
    assert search_sql("+1 42").shape == "phone"
    assert search_sql("2024").shape == "words"  # a year, not a number
    assert search_sql("---").shape == "none"
    assert tsquery(["Jane", "yam"]) == "'jane' & 'yam'"  # the prefix index's
    assert tsquery(["Jane", "yam", "li"], prefix=True) == "'jane':* & 'yam':* & 'li'"


def test_words_are_prefixes_of_the_words_of_one_persons_name() -> None:
    jane = make_call(1)
    ParticipantFactory(call=jane, display_name="Jane Yamamoto")
    split = make_call(2)  # a Jane and a Yamamoto, but not one person
    ParticipantFactory(call=split, display_name="Jane Doe")
    ParticipantFactory(call=split, display_name="Bob Yamamoto", left_at=NOW)
    irish = make_call(3)
    ParticipantFactory(call=irish, display_name="Seán O'Brien-Kelly")
    assert found("yama") == [jane.pk, split.pk]
    assert found("YAMAMOTO") == [jane.pk, split.pk]
    assert found("jane yam") == [jane.pk]
    assert found("yam jane") == [jane.pk]  # words in any order
    assert found("amoto") == []  # not the start of a word
    assert found("jane yamamotos") == []
    # Apostrophes and hyphens separate words; non-ASCII letters are letters.
    assert found("brien") == [irish.pk]
    assert found("kelly") == [irish.pk]
    assert found("seán o'brien") == [irish.pk]
    # A word shorter than three letters is a whole word, not a prefix.
    li = make_call(4)
    ParticipantFactory(call=li, display_name="Li Wei")
    ParticipantFactory(call=make_call(5), display_name="Lina Wei")
    assert found("li wei") == [li.pk]
    assert found("wei lin") == [found("lina")[0]]


def test_words_match_the_subject_and_caller_together() -> None:
    bridge = make_call(1, subject="Incident bridge", source_display="Ana Lopez")
    review = make_call(2, subject="Quarterly review", source_display="Lee Okafor")
    assert found("incident") == [bridge.pk]
    assert found("bridge inc") == [bridge.pk]
    assert found("incident lop") == [bridge.pk]  # subject and caller of one call
    assert found("okafor") == [review.pk]
    assert found("incident okafor") == []


def test_a_phone_number_is_the_start_or_the_end_of_the_digits() -> None:
    caller = make_call(1, source_id="+14255550100", source_display="+1 425 555 0100")
    guest = make_call(2)
    ParticipantFactory(call=guest, identity_kind="phone", identity_id="+4930123456")
    # A GUID caller or a user whose id has the same digits is not a phone number.
    make_call(3, source_id="14255550-1000-4000-8000-000000000000")
    user = make_call(4)
    ParticipantFactory(
        call=user,
        identity_kind="user",
        identity_id="49301234-5600-4000-8000-0000000000aa",
    )
    assert found("+1 (425) 555-0100") == [caller.pk]
    assert found("+1 425") == [caller.pk]  # the start
    assert found("425 555 0100") == [caller.pk]  # the end: no country code
    assert found("555-0100") == [caller.pk]
    assert found("+49 30 123456") == [guest.pk]
    assert found("030 123456") == []  # a trunk prefix is not in the number
    assert found("4255551") == []


def test_a_whole_id_is_compared_exactly() -> None:
    ident = "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
    on = make_call(1)
    ParticipantFactory(call=on, identity_id=ident)
    caller = make_call(2, source_id=ident.replace("0f1e", "1f1e"))
    # The id's text in a subject or name is not the person.
    make_call(3, subject=f"About {ident}")
    assert found(ident.upper()) == [on.pk]
    assert found("{" + ident + "}") == [on.pk]
    assert found(ident.replace("0f1e", "1f1e")) == [caller.pk]
    assert found(ident[:-1] + "d") == []
    assert found(on.graph_id) == [on.pk]


def test_a_common_word_pages_and_counts_like_a_rare_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More than SEARCH_IDS matching calls: the page probes each call in page
    order (the people, the subject and the caller) instead of a list of ids."""
    import dashboard.history_query as history_query

    monkeypatch.setattr(history_query, "SEARCH_IDS", 2)
    monkeypatch.setattr(history_query, "READ_ROWS", 9)
    hits = []
    for hour in range(3):
        hits.append(make_call(hour))
        ParticipantFactory(call=hits[-1], display_name="Kenji Yamamoto")
        ParticipantFactory(call=hits[-1], display_name="Aiko Yamamoto")
    hits.append(make_call(3, subject="Yamada's review"))
    hits.append(make_call(4, source_display="Ana Yamashita"))
    make_call(5, subject="Kamiyama")  # not the start of a word
    calls = matching_calls(HistoryFilters(q="yama"))
    assert count_matches(calls, limit=2) == (2, True)
    page = history_page(calls, Sort.NEWEST, size=2)
    assert [c.pk for c in page.calls] == [hits[0].pk, hits[1].pk]
    rest = history_page(calls, Sort.NEWEST, after=page.after or "", size=5)
    assert [c.pk for c in rest.calls] == [c.pk for c in hits[2:]]
    calls = matching_calls(HistoryFilters(q="aiko yamamoto"))
    assert [c.pk for c in calls.order_by("-created_at")] == [c.pk for c in hits[:3]]


@pytest.mark.parametrize("many_people", [False, True])
def test_a_common_subject_pages_without_probing_each_calls_people(
    monkeypatch: pytest.MonkeyPatch, many_people: bool
) -> None:
    """A word on more than SEARCH_IDS subjects or callers: when few people match
    it, their calls (and a caller id typed whole) are a list of ids beside the
    test of each call's own columns, and the page probes nobody's name; when
    many do, each call's people are probed. The same calls either way."""
    import dashboard.history_query as history_query

    monkeypatch.setattr(history_query, "SEARCH_IDS", 2)
    monkeypatch.setattr(history_query, "READ_ROWS", 9)
    monkeypatch.setattr(history_query, "_many_people", lambda search: many_people)
    hits = [make_call(0, subject="Incident bridge")]
    hits.append(make_call(1, subject="Weekly sync"))
    ParticipantFactory(call=hits[-1], display_name="Incident Bridgewater")
    hits.append(make_call(2, subject="Incident review"))
    hits.append(make_call(3, source_display="Guest", source_id="INCIDENT"))
    hits.append(make_call(4, source_display="Incidental Ana"))
    make_call(5, subject="Coincident")  # not the start of a word
    make_call(6, source_id="incident-2")

    calls = matching_calls(HistoryFilters(q="incident"))
    probes = "calls_participant" in str(calls.query)
    assert probes == many_people
    assert count_matches(calls, limit=2) == (2, True)
    page = history_page(calls, Sort.NEWEST, size=3)
    assert [c.pk for c in page.calls] == [c.pk for c in hits[:3]]
    rest = history_page(calls, Sort.NEWEST, after=page.after or "", size=3)
    assert [c.pk for c in rest.calls] == [c.pk for c in hits[3:]]
    assert rest.after is None
    back = history_page(calls, Sort.NEWEST, before=rest.before or "", size=3)
    assert [c.pk for c in back.calls] == [c.pk for c in hits[:3]]
    assert found("incident bridge") == [hits[0].pk, hits[1].pk]


def test_a_common_search_is_remembered_for_its_next_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read that found a search common on the calls' own columns is not
    repeated for its next pages, for a few minutes; the count still says so."""
    import dashboard.history_query as history_query

    monkeypatch.setattr(history_query, "SEARCH_IDS", 2)
    monkeypatch.setattr(history_query, "READ_ROWS", 9)
    hits = [make_call(hour, subject="Incident bridge") for hour in range(3)]
    filters = HistoryFilters(q="incident")

    with CaptureQueriesContext(connection) as first:
        matching_calls(filters)
    with CaptureQueriesContext(connection) as again:
        calls = matching_calls(filters)

    assert len(again) == len(first) - 1
    assert count_matches(calls, limit=2) == (2, True)
    assert [c.pk for c in history_page(calls, Sort.NEWEST).calls] == [
        c.pk for c in hits
    ]
    # A verdict that has outlived its time is read again.
    history_query.forget_common_searches()
    monkeypatch.setattr(history_query._CommonSearches, "TTL", -1.0)
    matching_calls(filters)
    with CaptureQueriesContext(connection) as expired:
        matching_calls(filters)
    assert len(expired) == len(first)


def test_ids_are_read_whole_up_to_the_limit_nulls_included() -> None:
    """A search's or filter's id read (one array on PostgreSQL, rows on SQLite)."""
    from callbot.calls.models import Recording
    from dashboard.history_query import _id_list

    calls = [make_call(hour) for hour in range(3)]
    ids = Call.objects.order_by("id").values_list("id")
    assert sorted(_id_list(ids, 2)) == sorted(c.pk for c in calls)[:2]
    assert sorted(_id_list(ids, 10)) == sorted(c.pk for c in calls)
    assert _id_list(ids.none(), 10) == []
    Recording.objects.create(
        action=ActionFactory(call=calls[0]), call=calls[0], audio="a.wav", size=1
    )
    Recording.objects.create(
        action=ActionFactory(call=calls[1]), call=None, audio="b.wav", size=1
    )
    found = _id_list(Recording.objects.values_list("call_id"), 10)
    assert sorted(found, key=lambda pk: pk or 0) == [None, calls[0].pk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_each_shape_reads_its_own_indexes_on_postgresql() -> None:
    """With sequential scans priced out, each side of each shape (people, the
    call's own columns) is an index scan on that shape's indexes."""
    make_call(1)
    guid = "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
    shapes = {
        "Yamamoto": ("participant_name_words_idx", "call_words_idx"),
        "+1 425 555": ("participant_phone_", "call_caller_phone_"),
        "425 555 0100": ("participant_phone_", "call_caller_phone_"),
        guid: ("participant_identity_upper_idx", "call_source_id_upper_idx"),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    try:
        for q, (people, own) in shapes.items():
            search = search_sql(q)
            # No ordering: a default order could be served by its own index.
            plan = Participant.objects.filter(search.people_q()).order_by().explain()
            assert people in plan, (q, plan)
            assert "Seq Scan" not in plan, (q, plan)
            plan = Call.objects.filter(search.own).order_by().explain()
            assert own in plan, (q, plan)
            assert "Seq Scan" not in plan, (q, plan)
            assert "calls_call_graph_key" in plan, (q, plan)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")


def test_a_common_ivr_option_pages_like_a_rare_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole token of the path (``menu:1``, not ``menu:12``), through the id
    list or, when common, probed per call."""
    import dashboard.history_query as history_query
    from callbot.ivr.models import IvrSession

    chose = []
    for hour, path in enumerate([" menu menu:1 sales ", " menu menu:12 ", " menu:1 "]):
        call = make_call(hour)
        IvrSession.objects.create(call=call, flow_start="menu", path=path)
        if "menu:1 " in path:
            chose.append(call.pk)
    for few in (False, True):
        if few:
            monkeypatch.setattr(history_query, "SEARCH_IDS", 1)
            monkeypatch.setattr(history_query, "READ_ROWS", 9)
        calls = matching_calls(HistoryFilters(ivr="menu:1"))
        assert [c.pk for c in history_page(calls, Sort.NEWEST).calls] == chose
        assert count_matches(calls, limit=1) == (1, True)
