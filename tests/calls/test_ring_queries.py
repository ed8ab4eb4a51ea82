"""A ring's cost, pinned: the statements ingest sends for the batch that brings
a new incoming call (Graph's ``created`` notification of a ringing call, no
roster yet). A supervisor waits on this batch's row (``bench/incoming_latency.py``),
so a statement added here is one more round trip before the row is published."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls.ingest import IngestResult, apply_notifications
from callbot.calls.models import Call
from callbot.graph.notifications import parse_notification_batch

pytestmark = pytest.mark.django_db


def ringing(call: str) -> dict[str, Any]:
    return {
        "changeType": "created",
        "resourceUrl": f"/communications/calls/{call}",
        "resourceData": {
            "@odata.type": "#microsoft.graph.call",
            "id": call,
            "state": "incoming",
            "direction": "incoming",
            "callChainId": str(uuid.uuid4()),
            "source": {
                "@odata.type": "#microsoft.graph.participantInfo",
                "identity": {"user": {"id": "caller-1", "displayName": "Ana"}},
            },
            "targets": [
                {
                    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                    "identity": {"application": {"id": "bot", "displayName": "Bot"}},
                }
            ],
        },
    }


def statements(batch: list[dict[str, Any]]) -> tuple[list[str], IngestResult]:
    """The statements sent to apply ``batch`` (transaction control not counted),
    and what became of it."""
    body = json.dumps({"value": batch}).encode()
    with CaptureQueriesContext(connection) as queries:
        result = apply_notifications(parse_notification_batch(body), message_id="m")
    assert result.stored == len(batch)
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "WITH"}
    ], result


# The quarantined digests (1), the calls locked (1), the new call inserted, its id
# returned (1), the event (1), the call written (1). Not asked: whether the
# notification is stored already (the call was just created: it has no events),
# the call read back after its insert, the board row's roster and action counts
# (a call just created has neither).
RING_BATCH = 5


def test_a_ring_costs_five_statements_and_its_row_is_whole() -> None:
    sql, result = statements([ringing(str(uuid.uuid4()))])
    assert len(sql) == RING_BATCH, sql
    call = Call.objects.get()
    assert (call.state, call.version, call.event_count) == ("incoming", 1, 1)
    [row] = [d.board for d in result.deltas if d.call_id == call.pk]
    assert row["participant_count"] == 0
    assert row["pending_actions"] == 0
    assert row["sharing"] == []
    assert row["caller"] == "Ana"
    assert row["state"] == "incoming"


def test_the_same_ring_delivered_again_is_a_duplicate() -> None:
    body = json.dumps({"value": [ringing(str(uuid.uuid4()))]}).encode()
    first = apply_notifications(parse_notification_batch(body), message_id="m")
    again = apply_notifications(parse_notification_batch(body), message_id="m")
    assert (first.stored, again.stored, again.duplicates) == (1, 0, 1)
    assert Call.objects.get().event_count == 1


@pytest.mark.parametrize("alongside", [0, 1])
def test_a_new_call_another_transaction_stored_first_is_skipped(alongside: int) -> None:
    """The insert of calls first seen in this batch skips a key another
    transaction stored between this one's look and its insert. Alone, such an
    insert returns no row where one row was asked for (Django's single-row
    path reads one with ``fetchone``): that is a skip, not an error."""
    from callbot.calls.workset import _insert_calls

    taken = Call.objects.create(graph_id="taken", graph_key="taken")
    new = [Call(graph_id="taken", graph_key="taken")]
    new += [Call(graph_id=f"new-{i}", graph_key=f"new-{i}") for i in range(alongside)]

    ours = _insert_calls(new)

    assert "taken" not in ours
    assert Call.objects.get(graph_key="taken").pk == taken.pk
    if connection.features.can_return_rows_from_bulk_insert:
        assert sorted(ours) == [f"new-{i}" for i in range(alongside)]
    assert Call.objects.count() == 1 + alongside
