"""The table of action kinds, without a database: one row per kind, and what the
other layers derive from it."""

from __future__ import annotations

import pytest

from callbot.calls import kinds
from callbot.calls.models import Action
from callbot.calls.performers import PERFORMERS
from callbot.calls.states import CallState


def test_every_action_kind_has_one_row_and_one_performer() -> None:
    assert set(Action.Kind.values) == kinds.ACTION_KINDS
    assert set(PERFORMERS) == kinds.ACTION_KINDS


def test_requests_that_are_not_actions_are_rows_too() -> None:
    assert not kinds.KINDS["mute_all"].is_action
    assert kinds.KINDS["unmute_participant"].unsupported.startswith(
        "Teams does not let a bot unmute"
    )
    assert {"mute_all", "unmute_participant"} <= kinds.BROWSER_KINDS


def test_browsers_may_ask_for_the_in_call_controls_and_the_ringing_decisions() -> None:
    assert {
        "answer",
        "reject",
        "redirect",
        "take",
        "mute_participant",
        "unmute_participant",
        "mute_all",
        "start_hold_music",
        "stop_hold_music",
        "invite",
        "remove_participant",
        "hang_up",
        "play_prompt",
        "mute_bot",
        "unmute_bot",
        "change_screen_sharing_role",
        "update_recording_status",
        "transfer",
    } == kinds.BROWSER_KINDS
    assert not kinds.KINDS["keep_alive"].browser
    assert kinds.KINDS["keep_alive"].bot_only


def test_every_kind_has_a_label_for_people() -> None:
    assert kinds.LABELS["mute_participant"] == "Mute Participant"
    assert kinds.LABELS["mute_all"] == "Mute everyone except presenters"
    assert all(kinds.LABELS[k] for k in kinds.KINDS)
    assert kinds.label("hang_up") == "hang up"
    assert kinds.label("no_such_kind") == "no_such_kind"


def test_kinds_that_create_their_call_name_no_states() -> None:
    creators = {k for k, r in kinds.KINDS.items() if r.states is None}
    assert creators == {
        "place_call",
        "place_group_call",
        "join_meeting",
        "create_online_meeting",
    }
    assert kinds.KINDS["answer"].states == {CallState.INCOMING}


def test_hold_kinds_say_which_way_they_move_the_hold() -> None:
    assert kinds.HOLD_KINDS == {"start_hold_music": True, "stop_hold_music": False}


@pytest.mark.parametrize(
    ("kind", "state", "previous", "expected"),
    [
        ("answer", "established", "establishing", "completed"),
        ("join_meeting", "hold", None, "completed"),
        ("place_call", "terminated", "establishing", "failed"),
        ("hang_up", "terminated", "terminating", "completed"),
        ("hang_up", "established", None, None),
        ("transfer", "transfer_accepted", "transferring", None),
        ("transfer", "terminated", "transfer_accepted", "completed"),
        ("transfer", "established", "transfer_accepted", "failed"),
        ("transfer", "established", "transferring", "failed"),
        ("transfer", "established", "hold", None),
        ("mute_bot", "terminated", "established", None),
    ],
)
def test_call_state_settles_the_actions_graph_answers_without_an_operation(
    kind: str, state: str, previous: str | None, expected: str | None
) -> None:
    assert kinds.settled_status(kind, state, previous) == expected


def test_the_ringing_decisions_act_only_on_an_incoming_call() -> None:
    for kind in ("answer", "reject", "redirect"):
        row = kinds.KINDS[kind]
        assert row.browser
        assert row.states == frozenset({CallState.INCOMING})
