"""The call state table, without a database."""

from __future__ import annotations

import pytest

from callbot.calls.states import (
    CALL_MOVES,
    CallState,
    can_move_action,
    can_move_call,
)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("incoming", "establishing"),
        ("establishing", "established"),
        ("established", "transferring"),
        ("transferring", "transfer_accepted"),
        ("transferring", "established"),  # a failed transfer comes back
        ("established", "hold"),
        ("hold", "established"),
        ("established", "terminating"),
        ("terminating", "terminated"),
        ("incoming", "terminated"),
    ],
)
def test_documented_moves_are_allowed(current: str, new: str) -> None:
    assert can_move_call(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("established", "establishing"),
        ("established", "incoming"),
        ("terminating", "established"),
        ("terminated", "established"),
        ("terminated", "terminated"),
        ("established", "no_such_state"),
    ],
)
def test_moves_backwards_or_out_of_terminated_are_refused(
    current: str, new: str
) -> None:
    assert not can_move_call(current, new)


def test_every_live_state_can_end() -> None:
    for state in CallState:
        if state is not CallState.TERMINATED:
            assert CallState.TERMINATED in CALL_MOVES[state]


def test_final_actions_stay_final() -> None:
    assert can_move_action("queued", "sent")
    assert can_move_action("sent", "completed")
    assert not can_move_action("completed", "failed")
    assert not can_move_action("failed", "sent")
