"""The webhook's cost per batch, pinned: the statements ingest sends for a batch do
not grow with the number of calls in it, the notifications per call or the size of
the rosters (docs/ingest.md, "Cost per batch"). A change that adds a query per call
or per notification fails here, not in a benchmark."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls.ingest import apply_notifications
from callbot.calls.models import Call, CallEvent, Participant
from callbot.graph.notifications import parse_notification_batch

pytestmark = pytest.mark.django_db

# Statements of a batch that changes existing calls: the digests quarantined and
# stored (2), the calls locked (1), their participants (1), the events (1), the
# participants and calls written (2), the roster history (1), the board's roster
# counts (1: the counts and who shares in one statement since Dec 2026, where
# there were two, which the dashboard's latency measured; bench/README.md).
CHANGING_BATCH = 9
# A batch whose calls are all new: the calls inserted (their ids come back from
# the insert: not read again), the participants inserted instead of updated, and
# the board's whole rows. Calls just created are not asked for stored digests
# (they have no events) nor for pending actions (they have none). SQLite takes
# at most 999 values per statement, so there Django splits the inserts of new
# participants and their history every few dozen rows (PostgreSQL does not).
NEW_CALLS_BATCH = 10


def person(i: int, muted: bool) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "info": {"identity": {"user": {"id": f"user-{i}", "displayName": f"P {i}"}}},
        "isMuted": muted,
        "isInLobby": False,
    }


def roster(call: str, size: int, muted: int) -> dict[str, Any]:
    return {
        "changeType": "updated",
        "resourceUrl": f"/communications/calls/{call}/participants",
        "resourceData": [person(i, i == muted) for i in range(size)],
    }


def established(call: str) -> dict[str, Any]:
    return {
        "changeType": "updated",
        "resourceUrl": f"/communications/calls/{call}",
        "resourceData": {
            "@odata.type": "#microsoft.graph.call",
            "id": call,
            "state": "established",
        },
    }


def statements(batch: list[dict[str, Any]], message_id: str) -> int:
    """Statements sent to apply ``batch`` (transaction control not counted: SQLite
    logs its BEGIN and COMMIT, PostgreSQL does not)."""
    body = json.dumps({"value": batch}).encode()
    with CaptureQueriesContext(connection) as queries:
        result = apply_notifications(
            parse_notification_batch(body), message_id=message_id
        )
    assert result.stored == len(batch)
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "WITH"}
    )


@pytest.mark.parametrize(
    ("calls", "per_call", "size"),
    [(1, 1, 3), (2, 1, 3), (8, 1, 3), (2, 2, 3), (8, 3, 40), (3, 2, 300), (2, 6, 8)],
)
def test_a_batch_costs_the_same_statements_whatever_its_shape(
    calls: int, per_call: int, size: int
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(calls)]
    first = [established(c) for c in ids] + [roster(c, size, -1) for c in ids]

    joins = statements(first, "joins")
    if calls * size <= 40:
        assert joins == NEW_CALLS_BATCH

    # Each notification mutes someone else: every one of them changes the roster.
    mutes = [roster(c, size, n) for n in range(per_call) for c in ids]
    assert statements(mutes, "mutes") == CHANGING_BATCH
    assert Call.objects.filter(version=2).count() == calls
    assert Participant.objects.filter(is_muted=True).count() == calls
    assert CallEvent.objects.count() == calls * (2 + per_call)
