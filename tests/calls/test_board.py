"""The board's read model: whole rows in a fixed number of queries, and a delta's
row carrying only what changed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls import board, deltas
from callbot.calls.availability import unavailable
from callbot.calls.models import Call
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


def busy_call(**fields: Any) -> Call:
    """A group call with the bot (muted), two people present (one muted, one
    sharing), one who left, and actions in every status."""
    call: Call = CallFactory(kind="group", **fields)
    ParticipantFactory(
        call=call, is_bot=True, is_muted=True, graph_id=call.my_participant_id
    )
    ParticipantFactory(call=call, display_name="Ana Ruiz", is_muted=True)
    ParticipantFactory(call=call, display_name="Bea Okafor", is_sharing_screen=True)
    ParticipantFactory(
        call=call,
        display_name="Carl Berg",
        is_muted=True,
        is_sharing_screen=True,
        left_at=timezone.now(),
    )
    now = timezone.now()
    ActionFactory(call=call, status="queued")
    ActionFactory(call=call, status="sent", sent_at=now)
    ActionFactory(call=call, status="completed", sent_at=now, completed_at=now)
    ActionFactory(call=call, status="failed", sent_at=now, completed_at=now)
    return call


def test_a_board_row_counts_the_people_present_but_not_the_bot() -> None:
    call = busy_call(
        subject="Incident bridge",
        result_code=480,
        result_subcode=10076,
        result_message="Callee unreachable.",
    )

    [row] = board.call_summaries([call])

    assert row["id"] == call.pk
    assert (row["participant_count"], row["muted_count"]) == (2, 1)
    assert row["bot_muted"] is True
    assert row["sharing"] == ["Bea Okafor"]
    assert row["pending_actions"] == 2
    assert row["result"] == "480/10076 Callee unreachable."
    assert (row["caller"], row["subject"], row["version"]) == (
        call.source_display,
        "Incident bridge",
        call.version,
    )
    assert json.loads(json.dumps(row)) == row


def test_an_empty_call_has_an_empty_row() -> None:
    call = CallFactory(result_code=487, result_message="Cancelled.")

    [row] = board.call_summaries([call])

    assert (row["participant_count"], row["muted_count"], row["bot_muted"]) == (
        0,
        0,
        False,
    )
    assert (row["sharing"], row["pending_actions"]) == ([], 0)
    assert row["result"] == "487/0 Cancelled."
    assert board.call_summaries([CallFactory()])[0]["result"] == ""


@pytest.mark.parametrize("calls", [1, 20])
def test_board_rows_take_the_same_queries_for_one_call_or_twenty(
    calls: int, django_assert_num_queries: Any
) -> None:
    for _ in range(calls):
        busy_call()
    CallFactory(state="terminated", terminated_at=timezone.now())

    # The live calls, the roster counts with who shares (one statement), the
    # pending actions.
    with django_assert_num_queries(3):
        rows = board.call_summaries(board.live_calls())

    assert len(rows) == calls
    assert {r["participant_count"] for r in rows} == {2}


# --- a delta's row --------------------------------------------------------------------


def attach(call: Call, changes: dict[str, Any], **sets: set[int]) -> dict[str, Any]:
    delta = deltas.bump(call, save=False, call_changes=changes)
    board.attach_board_changes(
        [delta],
        {call.pk: call},
        fresh=sets.get("fresh", set()),
        roster_changed=sets.get("roster_changed", set()),
        actions_changed=sets.get("actions_changed", set()),
    )
    return delta.board


def test_a_new_calls_row_is_sent_whole() -> None:
    call = busy_call()

    row = attach(call, {"state": "established"}, fresh={call.pk})

    assert row == dict(board.call_summaries([call])[0])
    assert row["version"] == call.version


def test_a_changed_call_sends_only_the_changed_fields_of_its_row(
    django_assert_num_queries: Any,
) -> None:
    call = busy_call()
    call.state = "hold"
    call.source_display = "Dana Lee"
    call.result_code, call.result_message = 200, "Held."

    with django_assert_num_queries(0):
        row = attach(
            call,
            {
                "state": "hold",
                "source_display": "Dana Lee",
                "result_code": 200,
                "result_message": "Held.",
                "media_state_audio": "inactive",
                "roster_sequence": 4,
            },
        )

    assert row == {
        "id": call.pk,
        "version": call.version,
        "state": "hold",
        "unavailable": unavailable(call),
        "caller": "Dana Lee",
        "result": "200/0 Held.",
        # Derived from the result, so sent with it: not a drop.
        "dropped": "",
    }


def test_a_roster_change_sends_the_counts_and_an_action_change_the_pending_count(
    django_assert_num_queries: Any,
) -> None:
    call = busy_call()

    with django_assert_num_queries(1):  # the counts and who shares, together
        roster = attach(call, {}, roster_changed={call.pk})
    with django_assert_num_queries(1):
        actions = attach(call, {}, actions_changed={call.pk})

    assert roster == {
        "id": call.pk,
        "version": call.version - 1,
        "participant_count": 2,
        "muted_count": 1,
        "bot_muted": True,
        "sharing": ["Bea Okafor"],
    }
    assert actions == {"id": call.pk, "version": call.version, "pending_actions": 2}


def test_many_calls_rows_are_filled_in_a_fixed_number_of_queries(
    django_assert_num_queries: Any,
) -> None:
    calls = {c.pk: c for c in (busy_call() for _ in range(5))}
    new = busy_call()
    calls[new.pk] = new
    changes = [
        deltas.bump(c, save=False, call_changes={"state": "hold"})
        for c in calls.values()
    ]

    # New rows whole (2), the others' roster counts with who shares (1) and
    # pending actions (1).
    with django_assert_num_queries(4):
        board.attach_board_changes(
            changes,
            calls,
            fresh={new.pk},
            roster_changed=set(calls),
            actions_changed=set(calls),
        )

    assert all(d.board["pending_actions"] == 2 for d in changes)
    assert all(d.board["participant_count"] == 2 for d in changes)
    assert changes[-1].board["id"] == new.pk
    assert "graph_id" in changes[-1].board
    assert "graph_id" not in changes[0].board


def test_who_shares_is_named_in_the_rosters_order_and_the_others_counted() -> None:
    call = busy_call()
    later = timezone.now() + timedelta(minutes=1)
    # Each sharer is counted (and a muted one as muted) beside the others.
    ParticipantFactory(
        call=call, display_name="Zoe Adler", is_sharing_screen=True, is_muted=True
    )
    ParticipantFactory(
        call=call, display_name="Al Early", is_sharing_screen=True, joined_at=later
    )
    quiet = CallFactory(kind="group")

    counts = board.roster_counts({call.pk, quiet.pk})

    assert counts[call.pk] == {
        "participant_count": 4,
        "muted_count": 2,
        "bot_muted": True,
        "sharing": ["Bea Okafor", "Zoe Adler", "Al Early"],
    }
    assert counts[quiet.pk] == {
        "participant_count": 0,
        "muted_count": 0,
        "bot_muted": False,
        "sharing": [],
    }
