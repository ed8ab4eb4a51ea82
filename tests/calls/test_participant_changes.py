"""Ingest keeps the roster over time: one ``ParticipantChange`` per join, leave,
return and change of a tracked field, written with one insert per batch."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls.ingest import apply_notifications, end_call_locally
from callbot.calls.models import Call, ParticipantChange
from callbot.graph.notifications import parse_notification_batch
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

LEE = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"


def ingest(body: str | dict[str, Any], message_id: str = "") -> None:
    batch = load_fixture(body) if isinstance(body, str) else body
    apply_notifications(
        parse_notification_batch(json.dumps(batch)), message_id=message_id
    )


def history(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c.event, c.changes)
        for c in ParticipantChange.objects.filter(
            participant__display_name=name
        ).order_by("at", "pk")
    ]


def crowd(size: int) -> dict[str, Any]:
    """The two-join roster with ``size`` more people in it."""
    batch = load_fixture("roster_two_join.json")
    entries = batch["value"][0]["resourceData"]
    model = next(e for e in entries if e["id"] == LEE)
    for n in range(size):
        extra = copy.deepcopy(model)
        extra["id"] = str(uuid.uuid4())
        extra["info"]["identity"]["user"]["displayName"] = f"Guest {n}"
        extra["info"]["identity"]["user"]["id"] = str(uuid.uuid4())
        entries.append(extra)
    return batch


def test_joins_changes_and_leaves_are_kept_in_order() -> None:
    ingest("meeting_join_established.json", "1")
    ingest("roster_two_join.json", "2")
    ingest("roster_lee_muted.json", "3")
    ingest("roster_ana_shares_lee_left.json", "4")

    assert history("Lee Chen") == [
        ("joined", {}),
        ("changed", {"is_muted": [False, True]}),
        ("left", {"removed_reason": ["", "left"]}),
    ]
    assert history("Ana Lopez") == [
        ("joined", {}),
        ("changed", {"is_sharing_screen": [False, True]}),
    ]
    end_call_locally(Call.objects.get().pk, "gone")
    assert history("Ana Lopez")[-1] == (
        "left",
        {"removed_reason": ["", "call_ended"]},
    )


def test_a_redelivered_roster_changes_nothing_and_keeps_nothing_more() -> None:
    ingest("meeting_join_established.json", "1")
    ingest("roster_lee_muted.json", "2")
    kept = ParticipantChange.objects.count()
    ingest("roster_lee_muted.json", "2")  # the same delivery again
    ingest("roster_lee_muted.json", "3")  # the same roster, newly delivered

    assert ParticipantChange.objects.count() == kept
    assert history("Lee Chen") == [("joined", {"is_muted": [None, True]})]


@pytest.mark.parametrize("size", [3, 300])
def test_a_crowd_joining_is_one_insert_and_costs_no_more_queries(size: int) -> None:
    ingest("meeting_join_established.json", "1")
    with CaptureQueriesContext(connection) as small:
        ingest(crowd(0), "2")
    Call.objects.all().delete()

    ingest("meeting_join_established.json", "3")
    with CaptureQueriesContext(connection) as big:
        ingest(crowd(size), "4")

    def inserts(table: str, queries: Any) -> int:
        return sum(1 for q in queries if q["sql"].startswith(f'INSERT INTO "{table}"'))

    assert ParticipantChange.objects.filter(event="joined").count() == size + 3
    # One bulk insert, which the database splits only as it splits the
    # participants' own (SQLite caps the values of one statement).
    assert inserts("calls_participantchange", small.captured_queries) == 1
    assert inserts("calls_participantchange", big.captured_queries) <= inserts(
        "calls_participant", big.captured_queries
    )
    extra = inserts("calls_participant", big.captured_queries) - 1
    extra += inserts("calls_participantchange", big.captured_queries) - 1
    assert len(big.captured_queries) == len(small.captured_queries) + extra
