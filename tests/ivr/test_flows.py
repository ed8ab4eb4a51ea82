"""The pure step function and flow validation: no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callbot.graph.limits import RECORD_TIMER_RANGE, STOP_TONE_CHARS
from callbot.ivr.flows import (
    LOOP_SECONDS,
    ActionFinished,
    Command,
    Ended,
    Established,
    Flow,
    FlowError,
    FlowState,
    Refused,
    Start,
    Tick,
    Tones,
    advance,
    parse_flow,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
AGENT_ID = "7c1e2b3a-4d5f-4a6b-8c9d-0e1f2a3b4c5d"

STEPS: list[dict[str, Any]] = [
    {"id": "welcome", "type": "play", "prompt": "welcome", "next": "menu"},
    {
        "id": "menu",
        "type": "collect",
        "prompt": "menu",
        "timeout": 5,
        "max_digits": 2,
        "terminator": "#",
        "branches": {"1": "message", "0": "operator", "01": "sales"},
        "default": "invalid",
        "on_timeout": "goodbye",
    },
    {"id": "invalid", "type": "play", "prompt": "invalid", "next": "menu"},
    {
        "id": "operator",
        "type": "transfer",
        "target": "operator",
        "on_failure": "goodbye",
    },
    {"id": "sales", "type": "invite", "target": {"phone": "+14255550100"}},
    {
        "id": "message",
        "type": "record",
        "prompt": "beep",
        "max_record_duration": 30,
        "next": "goodbye",
    },
    {"id": "goodbye", "type": "play", "prompt": "goodbye", "next": "bye"},
    {"id": "bye", "type": "hang_up"},
]


@pytest.fixture
def flow() -> Flow:
    return parse_flow("welcome", STEPS)


def run(
    flow: Flow, state: FlowState, event: Any, action_id: int | None = None
) -> tuple[FlowState, list[Command]]:
    """advance, then do what the runtime does for a waited-on command."""
    state, commands = advance(flow, state, event)
    if action_id is not None and any(c.wait for c in commands):
        state = FlowState(**{**state.__dict__, "awaiting": action_id})
    return state, commands


def at_menu(flow: Flow) -> FlowState:
    """A session answered, welcomed, and listening at the menu."""
    state, _ = run(flow, FlowState(), Start(T0))
    state, _ = run(flow, state, Established(T0), action_id=1)
    state, _ = run(flow, state, ActionFinished(1, "completed", T0), action_id=2)
    state, _ = run(flow, state, ActionFinished(2, "completed", T0))
    assert state.phase == "collecting"
    return state


# --- validation -------------------------------------------------------------------------------
def test_a_valid_flow_parses_into_typed_steps(flow: Flow) -> None:
    assert flow.start == "welcome"
    assert flow.step("menu").branches == {
        "1": "message",
        "0": "operator",
        "01": "sales",
    }
    assert flow.step("operator").target == "operator"
    assert flow.step("message").max_record_duration == 30


def test_unknown_step_ids_are_named_in_the_error() -> None:
    steps = [{"id": "a", "type": "play", "prompt": "x", "next": "nowhere"}]
    with pytest.raises(FlowError) as raised:
        parse_flow("a", steps)
    assert "Step 'a' leads to unknown step 'nowhere'" in raised.value.problems


def test_unreachable_steps_are_named_in_the_error() -> None:
    steps = [
        {"id": "a", "type": "hang_up"},
        {"id": "orphan", "type": "hang_up"},
    ]
    with pytest.raises(FlowError) as raised:
        parse_flow("a", steps)
    assert raised.value.problems == ["Step 'orphan' is unreachable from 'a'"]


def test_a_missing_start_step_duplicate_ids_and_bad_timers_are_all_reported() -> None:
    steps = [
        {"id": "a", "type": "hang_up"},
        {"id": "a", "type": "hang_up"},
        {
            "id": "c",
            "type": "collect",
            "timeout": 0,
            "branches": {"1": "a"},
            "default": "a",
        },
    ]
    with pytest.raises(FlowError) as raised:
        parse_flow("start", steps)
    problems = raised.value.problems
    assert "Step id 'a' is used twice" in problems
    assert "The start step 'start' is not one of the steps" in problems
    assert "Step 'c': timeout must be a whole number from 1 to 60" in problems


def test_a_collect_step_needs_branches_and_a_default() -> None:
    with pytest.raises(FlowError) as raised:
        parse_flow("c", [{"id": "c", "type": "collect"}])
    assert any("needs branches" in p for p in raised.value.problems)
    assert any("needs a default step" in p for p in raised.value.problems)


def test_branch_keys_must_be_dtmf_and_fit_max_digits() -> None:
    steps = [
        {
            "id": "c",
            "type": "collect",
            "branches": {"x": "c", "12": "c"},
            "default": "c",
        }
    ]
    with pytest.raises(FlowError) as raised:
        parse_flow("c", steps)
    assert "Step 'c': branch 'x' is not a key sequence" in raised.value.problems
    assert (
        "Step 'c': branch '12' is longer than max_digits (1)" in raised.value.problems
    )


def test_unknown_types_keys_and_targets_are_rejected() -> None:
    steps = [
        {"id": "a", "type": "transfer", "target": {"user_id": ""}, "colour": "red"},
        {"id": "b", "type": "dance"},
    ]
    with pytest.raises(FlowError) as raised:
        parse_flow("a", steps)
    problems = " | ".join(raised.value.problems)
    assert "transfer does not take colour" in problems
    assert "target must be" in problems
    assert "Step 'b': type must be one of" in problems


def test_a_redirect_is_only_allowed_as_the_start_step() -> None:
    steps = [
        {"id": "a", "type": "play", "prompt": "x", "next": "r"},
        {"id": "r", "type": "redirect", "target": {"phone": "+14255550100"}},
    ]
    with pytest.raises(FlowError) as raised:
        parse_flow("a", steps)
    assert "a redirect can only be the start step" in raised.value.problems[0]


def test_prompt_names_are_checked_against_the_known_prompts() -> None:
    with pytest.raises(FlowError) as raised:
        parse_flow("welcome", STEPS, known_prompts={"welcome", "menu"})
    assert "Step 'invalid': no prompt named 'invalid'" in raised.value.problems


# --- the step function --------------------------------------------------------------------------
def test_start_answers_and_established_subscribes_and_plays_the_first_prompt(
    flow: Flow,
) -> None:
    state, commands = advance(flow, FlowState(), Start(T0))
    assert commands == [Command("answer")]
    assert state.phase == "answering"

    state, commands = advance(flow, state, Established(T0))
    assert commands == [
        Command("subscribe_to_tone"),
        Command("play_prompt", {"prompt": "welcome"}, wait=True),
    ]
    assert (state.step, state.phase) == ("welcome", "playing")


def test_a_flow_without_a_collect_step_does_not_subscribe_to_tones() -> None:
    flow = parse_flow(
        "w", [{"id": "w", "type": "play", "prompt": "welcome", "next": "w"}]
    )
    state, _ = advance(flow, FlowState(), Start(T0))

    state, commands = advance(flow, state, Established(T0))

    assert commands == [Command("play_prompt", {"prompt": "welcome"}, wait=True)]


def test_a_play_step_going_on_at_itself_plays_again_after_its_loop_time() -> None:
    flow = parse_flow(
        "w", [{"id": "w", "type": "play", "prompt": "welcome", "next": "w"}]
    )
    play = Command("play_prompt", {"prompt": "welcome"}, wait=True)
    state, _ = advance(flow, FlowState(), Start(T0))
    state, _ = advance(flow, state, Established(T0))
    state = replace(state, awaiting=3)
    loop = timedelta(seconds=LOOP_SECONDS)

    # Played in a moment, or failed: no new request before LOOP_SECONDS...
    for status in ("completed", "failed"):
        over, commands = advance(flow, state, ActionFinished(3, status, T0))
        assert (commands, over.awaiting, over.step) == ([], None, "w")
    assert advance(flow, over, Tick(T0 + loop / 2)) == (over, [])
    # ...then the sweep's tick plays it again.
    again, commands = advance(flow, over, Tick(T0 + loop))
    assert commands == [play]
    assert again.replay_at == T0 + 2 * loop
    # Played its whole length: again at once.
    whole, commands = advance(flow, state, ActionFinished(3, "completed", T0 + loop))
    assert commands == [play]
    assert whole.replay_at == T0 + 2 * loop


def test_a_flow_starting_with_a_redirect_redirects_instead_of_answering() -> None:
    flow = parse_flow(
        "r", [{"id": "r", "type": "redirect", "target": {"user_id": AGENT_ID}}]
    )
    state, commands = advance(flow, FlowState(), Start(T0))
    assert commands == [Command("redirect", {"target": {"user_id": AGENT_ID}})]
    assert state.status == "completed"


def test_only_the_awaited_action_moves_the_flow(flow: Flow) -> None:
    state, _ = run(flow, FlowState(), Start(T0))
    state, _ = run(flow, state, Established(T0), action_id=7)

    same, commands = advance(flow, state, ActionFinished(99, "completed", T0))
    assert (same, commands) == (state, [])

    state, commands = advance(flow, state, ActionFinished(7, "completed", T0))
    assert commands == [Command("play_prompt", {"prompt": "menu"}, wait=True)]
    assert (state.step, state.phase) == ("menu", "prompting")


def test_the_collection_timer_starts_when_the_menu_prompt_finishes(flow: Flow) -> None:
    state = at_menu(flow)
    assert state.deadline == T0 + timedelta(seconds=5)


def test_pressing_zero_goes_straight_to_the_operator_when_no_longer_branch_follows(
    flow: Flow,
) -> None:
    steps = [dict(s) for s in STEPS]
    steps[1] = {**steps[1], "branches": {"1": "message", "0": "operator"}}
    steps = [s for s in steps if s["id"] != "sales"]
    single = parse_flow("welcome", steps)
    state = at_menu(single)

    state, commands = advance(single, state, Tones(("0",), T0))
    assert commands == [Command("transfer", {"target": "operator"}, wait=True)]
    assert (state.step, state.phase, state.outcome) == (
        "operator",
        "transferring",
        "pressed 0",
    )


def test_a_prefix_of_a_longer_branch_waits_for_the_next_key(flow: Flow) -> None:
    state = at_menu(flow)
    state, commands = advance(flow, state, Tones(("0",), T0 + timedelta(seconds=1)))
    assert commands == []
    assert state.digits == "0"
    # Each key restarts the timer.
    assert state.deadline == T0 + timedelta(seconds=6)

    state, commands = advance(flow, state, Tones(("1",), T0 + timedelta(seconds=2)))
    assert commands == [
        Command("invite", {"target": {"phone": "+14255550100"}}, wait=True)
    ]
    assert state.step == "sales"


def test_the_terminator_ends_the_entry(flow: Flow) -> None:
    state = at_menu(flow)
    state, commands = advance(flow, state, Tones(("0", "#"), T0))
    assert state.step == "operator"
    assert commands[0].kind == "transfer"


def test_keys_no_branch_matches_take_the_default(flow: Flow) -> None:
    state = at_menu(flow)
    state, commands = advance(flow, state, Tones(("9", "9"), T0))
    assert commands == [Command("play_prompt", {"prompt": "invalid"}, wait=True)]
    assert state.step == "invalid"
    assert state.outcome == "pressed 99 (no such option)"


def test_keys_during_the_menu_prompt_barge_in_and_cancel_it(flow: Flow) -> None:
    state, _ = run(flow, FlowState(), Start(T0))
    state, _ = run(flow, state, Established(T0), action_id=1)
    state, _ = run(flow, state, ActionFinished(1, "completed", T0), action_id=2)
    assert state.phase == "prompting"

    state, commands = advance(flow, state, Tones(("1",), T0))
    assert commands[0] == Command("cancel_media_processing")
    assert commands[1].kind == "record_response"
    assert commands[1].params["prompt"] == "beep"
    assert commands[1].params["max_record_duration"] == 30
    assert state.step == "message"


def test_keys_pressed_during_the_welcome_are_typed_ahead_into_the_menu(
    flow: Flow,
) -> None:
    state, _ = run(flow, FlowState(), Start(T0))
    state, _ = run(flow, state, Established(T0), action_id=1)
    state, _ = advance(flow, state, Tones(("1",), T0))
    assert state.digits == "1"

    state, commands = advance(flow, state, ActionFinished(1, "completed", T0))
    # The menu prompt is skipped: the caller already chose.
    assert [c.kind for c in commands] == ["record_response"]
    assert state.step == "message"


def test_tones_before_any_menu_are_ignored(flow: Flow) -> None:
    state, _ = run(flow, FlowState(), Start(T0))
    same, commands = advance(flow, state, Tones(("5",), T0))
    assert (same, commands) == (state, [])


def test_pressing_nothing_takes_the_timeout_branch_at_the_deadline(flow: Flow) -> None:
    state = at_menu(flow)
    early, commands = advance(flow, state, Tick(T0 + timedelta(seconds=4)))
    assert (early, commands) == (state, [])

    state, commands = advance(flow, state, Tick(T0 + timedelta(seconds=5)))
    assert commands == [Command("play_prompt", {"prompt": "goodbye"}, wait=True)]
    assert (state.step, state.outcome) == ("goodbye", "no keys pressed")


def test_a_timeout_with_a_partial_entry_routes_what_was_pressed(flow: Flow) -> None:
    state = at_menu(flow)
    state, _ = advance(flow, state, Tones(("0",), T0))
    state, commands = advance(flow, state, Tick(T0 + timedelta(seconds=10)))
    assert state.step == "operator"
    assert commands[0].kind == "transfer"


def test_goodbye_then_hang_up_completes_the_session(flow: Flow) -> None:
    state = at_menu(flow)
    state, _ = run(flow, state, Tick(T0 + timedelta(seconds=5)), action_id=3)
    state, commands = advance(flow, state, ActionFinished(3, "completed", T0))
    assert commands == [Command("hang_up")]
    assert state.status == "completed"
    assert state.outcome == "no keys pressed"


def test_a_completed_transfer_finishes_the_session(flow: Flow) -> None:
    state = at_menu(flow)
    state, _ = run(flow, state, Tones(("0", "#"), T0), action_id=4)
    state, commands = advance(flow, state, ActionFinished(4, "completed", T0))
    assert commands == []
    assert (state.status, state.outcome) == ("completed", "transferred to operator")


def test_the_call_ending_during_a_transfer_counts_as_transferred(flow: Flow) -> None:
    state = at_menu(flow)
    state, _ = run(flow, state, Tones(("0", "#"), T0), action_id=4)
    state, _ = advance(flow, state, Ended(T0))
    assert (state.status, state.outcome) == ("completed", "transferred to operator")


def test_a_failed_transfer_takes_its_failure_branch(flow: Flow) -> None:
    state = at_menu(flow)
    state, _ = run(flow, state, Tones(("0", "#"), T0), action_id=4)
    state, commands = advance(flow, state, ActionFinished(4, "failed", T0))
    assert commands == [Command("play_prompt", {"prompt": "goodbye"}, wait=True)]
    assert state.outcome == "transfer failed"


def test_an_invite_without_a_next_step_leaves_the_bot_in_the_call(flow: Flow) -> None:
    state = at_menu(flow)
    state, _ = run(flow, state, Tones(("0", "1"), T0), action_id=5)
    state, commands = advance(flow, state, ActionFinished(5, "completed", T0))
    assert commands == []
    assert (state.status, state.outcome) == ("completed", "invited +14255550100")


def test_the_caller_hanging_up_ends_the_session_and_nothing_moves_after(
    flow: Flow,
) -> None:
    state = at_menu(flow)
    state, commands = advance(flow, state, Ended(T0))
    assert (state.status, commands) == ("ended", [])
    later, commands = advance(flow, state, Tick(T0 + timedelta(minutes=1)))
    assert (later, commands) == (state, [])


def test_a_refused_request_fails_the_session_and_hangs_up(flow: Flow) -> None:
    state = at_menu(flow)
    state, commands = advance(
        flow,
        state,
        Refused("play_prompt", "The prompt uri must be an http(s) URL.", T0),
    )
    assert commands == [Command("hang_up")]
    assert state.status == "failed"
    assert "The prompt uri must be" in state.outcome


def test_a_refused_answer_fails_without_hanging_up(flow: Flow) -> None:
    state, _ = advance(flow, FlowState(), Start(T0))
    state, commands = advance(flow, state, Refused("answer", "The call has ended.", T0))
    assert (state.status, commands) == ("failed", [])


def test_record_stop_tones_are_limited_to_what_graph_accepts() -> None:
    steps = [
        {"id": "r", "type": "record", "next": "bye", "stop_tones": ["a"]},
        {"id": "bye", "type": "hang_up"},
    ]
    with pytest.raises(FlowError) as raised:
        parse_flow("r", steps)
    assert raised.value.problems == [
        "Step 'r': stop_tones must be a list of keys from "
        "0 1 2 3 4 5 6 7 8 9 # * A B C D, such as '#'"
    ]


def record_step(**fields: Any) -> list[dict[str, Any]]:
    return [
        {"id": "r", "type": "record", "next": "bye", **fields},
        {"id": "bye", "type": "hang_up"},
    ]


def test_record_steps_take_every_stop_tone_the_contract_allows() -> None:
    tones = sorted(STOP_TONE_CHARS)
    flow = parse_flow("r", record_step(stop_tones=tones))
    assert flow.step("r").stop_tones == tuple(tones)


@pytest.mark.parametrize(
    "key", ["max_record_duration", "initial_silence_timeout", "max_silence_timeout"]
)
def test_record_timers_are_held_to_the_contracts_range(key: str) -> None:
    low, high = RECORD_TIMER_RANGE
    for right in (low, high):
        assert (
            getattr(parse_flow("r", record_step(**{key: right})).step("r"), key)
            == right
        )
    for wrong in (low - 1, high + 1):
        with pytest.raises(FlowError) as raised:
            parse_flow("r", record_step(**{key: wrong}))
        assert raised.value.problems == [
            f"Step 'r': {key} must be a whole number from {low} to {high}"
        ]


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (
            {"user_id": "u-1"},
            "Step 't': target user_id 'u-1' is not an Azure AD object id (a GUID)",
        ),
        (
            {"phone": "+1234"},
            "Step 't': target phone '+1234' is not a number in +E.164 form, "
            "e.g. +14255550199",
        ),
        (
            {"phone": "+1 425 555 0100"},
            "Step 't': target phone '+1 425 555 0100' is not a number in +E.164 "
            "form, e.g. +14255550199",
        ),
        (
            {"phone": "+14255550100\n"},
            "Step 't': target phone '+14255550100\\n' is not a number in +E.164 "
            "form, e.g. +14255550199",
        ),
    ],
)
def test_targets_are_object_ids_or_e164_numbers(
    target: dict[str, str], problem: str
) -> None:
    steps = [{"id": "t", "type": "transfer", "target": target}]
    with pytest.raises(FlowError) as raised:
        parse_flow("t", steps)
    assert raised.value.problems == [problem]


def test_valid_targets_parse() -> None:
    for target in ({"user_id": AGENT_ID.upper()}, {"phone": "+14255550100"}):
        flow = parse_flow("t", [{"id": "t", "type": "transfer", "target": target}])
        assert flow.step("t").target == target


def test_branch_letters_match_the_lower_case_keys_tones_arrive_as() -> None:
    steps = [
        {"id": "c", "type": "collect", "branches": {"A": "bye"}, "default": "bye"},
        {"id": "bye", "type": "hang_up"},
    ]
    flow = parse_flow("c", steps)
    assert flow.step("c").branches == {"a": "bye"}
    state, _ = advance(flow, FlowState(step="c", phase="collecting"), Tones(("a",), T0))
    assert (state.step, state.outcome) == ("bye", "pressed a")

    steps[0]["branches"] = {"A": "bye", "a": "bye"}
    with pytest.raises(FlowError) as raised:
        parse_flow("c", steps)
    assert raised.value.problems == ["Step 'c': branch 'a' is given twice"]
