"""The ``supervisors`` flow step: a caller queued for a person with hold music,
taken from the board (``take_call``) or moved on to ``next`` by the timeout sweep
once ``max_wait`` is over. First the pure step function, then the runtime."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from django.utils import timezone

import pytest

from callbot.calls.board import call_summaries
from callbot.calls.live import iso
from callbot.calls.models import AuditEntry, Call
from callbot.calls.states import CallState
from callbot.ivr import runtime, supervisors
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
from callbot.ivr.models import CallPolicy, IvrFlow, IvrSession
from tests.ivr.test_runtime import actions, incoming_call

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

STEPS: list[dict[str, Any]] = [
    {"id": "queue", "type": "supervisors", "max_wait": 30, "next": "operator"},
    {"id": "operator", "type": "transfer", "target": "operator"},
]
WAITING = Command("set_waiting", {"waiting": True, "then": "go on to operator"})
NOT_WAITING = Command("set_waiting", {"waiting": False})
MUSIC = Command("play_prompt", {"prompt": "hold-music"}, wait=True)


@pytest.fixture
def flow() -> Flow:
    return parse_flow("queue", STEPS)


def queued(flow: Flow) -> FlowState:
    """Answered, established, and waiting in the queue with the music (action 7)."""
    state, _ = advance(flow, FlowState(), Start(T0))
    state, commands = advance(flow, state, Established(T0))
    # No collect step: nothing acts on keys, so no tone subscription.
    assert commands == [WAITING, MUSIC]
    return FlowState(**{**state.__dict__, "awaiting": 7})


# --- validation -------------------------------------------------------------------------------
def test_a_supervisors_step_parses_with_the_hold_music_by_default(flow: Flow) -> None:
    step = flow.step("queue")

    assert (step.type, step.max_wait, step.next, step.prompt) == (
        "supervisors",
        30,
        "operator",
        "hold-music",
    )
    assert step.exits() == ["operator"]
    own = parse_flow("q", [{**STEPS[0], "id": "q", "prompt": "jingle"}, STEPS[1]])
    assert own.step("q").prompt == "jingle"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"max_wait": 30}, "supervisors needs a next step"),
        ({"next": "operator"}, "supervisors needs max_wait"),
        ({"max_wait": 4, "next": "operator"}, "max_wait must be a whole number"),
        ({"max_wait": 3601, "next": "operator"}, "from 5 to 3600"),
        ({"max_wait": "60", "next": "operator"}, "max_wait must be a whole number"),
        ({"max_wait": True, "next": "operator"}, "max_wait must be a whole number"),
        ({"max_wait": 30, "next": 5}, "next must be text"),
        ({"max_wait": 30, "next": "nowhere"}, "leads to unknown step 'nowhere'"),
        ({"max_wait": 30, "next": "queue"}, "supervisors cannot go on at itself"),
        (
            {"max_wait": 30, "next": "operator", "target": "operator"},
            "supervisors does not take target",
        ),
    ],
)
def test_bad_supervisors_steps_are_refused_with_the_reason(
    fields: dict[str, Any], problem: str
) -> None:
    steps = [{"id": "queue", "type": "supervisors", **fields}, STEPS[1]]
    with pytest.raises(FlowError) as error:
        parse_flow("queue", steps)

    assert any(problem in p for p in error.value.problems), error.value.problems


def test_the_hold_music_must_be_a_known_prompt_when_prompts_are_checked() -> None:
    with pytest.raises(FlowError, match="no prompt named 'hold-music'"):
        parse_flow("queue", STEPS, known_prompts=["menu"])
    assert parse_flow("queue", STEPS, known_prompts=["hold-music"])


# --- the step function --------------------------------------------------------------------------
def test_reaching_the_step_marks_the_call_waiting_and_plays_music(flow: Flow) -> None:
    state = queued(flow)

    assert (state.step, state.phase, state.status) == ("queue", "queued", "running")
    assert state.deadline == T0 + timedelta(seconds=30)


def test_the_music_loops_until_the_wait_is_over(flow: Flow) -> None:
    state = queued(flow)
    later = T0 + timedelta(seconds=LOOP_SECONDS + 1)

    state, commands = advance(flow, state, ActionFinished(7, "completed", later))

    assert commands == [MUSIC]
    assert (state.phase, state.deadline) == ("queued", T0 + timedelta(seconds=30))
    assert state.replay_at == later + timedelta(seconds=LOOP_SECONDS)
    # Keys pressed while waiting change nothing.
    assert advance(flow, state, Tones(("0",), later)) == (state, [])


def test_music_reported_over_early_plays_again_on_the_tick_after_its_loop_time(
    flow: Flow,
) -> None:
    state = queued(flow)
    assert state.replay_at == T0 + timedelta(seconds=LOOP_SECONDS)
    # The emulator reports a prompt played in a fifth of a second.
    soon = T0 + timedelta(seconds=0.2)

    state, commands = advance(flow, state, ActionFinished(7, "completed", soon))

    assert commands == []
    assert (state.phase, state.awaiting) == ("queued", None)
    early = T0 + timedelta(seconds=LOOP_SECONDS - 1)
    assert advance(flow, state, Tick(early)) == (state, [])
    due = T0 + timedelta(seconds=LOOP_SECONDS)
    state, commands = advance(flow, state, Tick(due))
    assert commands == [MUSIC]
    assert state.replay_at == due + timedelta(seconds=LOOP_SECONDS)


def test_music_of_a_session_stored_without_a_replay_time_plays_again_at_once(
    flow: Flow,
) -> None:
    state = replace(queued(flow), replay_at=None)

    state, commands = advance(flow, state, ActionFinished(7, "completed", T0))

    assert commands == [MUSIC]
    assert state.replay_at == T0 + timedelta(seconds=LOOP_SECONDS)


def test_before_max_wait_a_tick_changes_nothing(flow: Flow) -> None:
    state = queued(flow)

    assert advance(flow, state, Tick(T0 + timedelta(seconds=29))) == (state, [])


def test_after_max_wait_the_music_stops_and_the_flow_goes_on_at_next(
    flow: Flow,
) -> None:
    state = queued(flow)

    state, commands = advance(flow, state, Tick(T0 + timedelta(seconds=30)))

    assert commands == [
        NOT_WAITING,
        Command("cancel_media_processing"),
        Command("transfer", {"target": "operator"}, wait=True),
    ]
    assert (state.step, state.phase, state.outcome) == (
        "operator",
        "transferring",
        "nobody took the call",
    )
    assert state.deadline is None


def test_music_that_fails_moves_on_at_once(flow: Flow) -> None:
    state = queued(flow)

    state, commands = advance(flow, state, ActionFinished(7, "failed", T0))

    assert commands[0] == NOT_WAITING
    assert (state.step, state.outcome) == ("operator", "hold music failed")


def test_refused_music_leaves_the_queue_and_hangs_up(flow: Flow) -> None:
    state = queued(flow)

    state, commands = advance(flow, state, Refused("play_prompt", "gone", T0))

    assert commands == [NOT_WAITING, Command("hang_up")]
    assert state.status == "failed"


def test_a_caller_hanging_up_in_the_queue_no_longer_waits(flow: Flow) -> None:
    state = queued(flow)

    state, commands = advance(flow, state, Ended(T0))

    assert commands == [NOT_WAITING]
    assert (state.status, state.deadline) == ("ended", None)


# --- the runtime ---------------------------------------------------------------------------------
@pytest.fixture
def queued_call(db: Any) -> tuple[Call, IvrSession]:
    """A call a policy answered into the queue flow, established, music playing."""
    flow = IvrFlow.objects.create(name="queue", start="queue", steps=STEPS)
    CallPolicy.objects.create(name="q", match="default", action="answer", flow=flow)
    call = incoming_call()
    assert runtime.apply_policy(call.pk) == "answered into a flow"
    Call.objects.filter(pk=call.pk).update(state=CallState.ESTABLISHED)
    runtime.handle_activity(call.pk, state="established", state_changed=True)
    return Call.objects.get(pk=call.pk), IvrSession.objects.get(call=call)


def test_the_runtime_queues_the_call_for_a_person_with_music(
    queued_call: tuple[Call, IvrSession],
) -> None:
    call, session = queued_call

    kinds = [kind for kind, _ in actions(call)]
    assert kinds == ["answer", "play_prompt"]
    answer, music = actions(call)[0][1], actions(call)[-1][1]
    assert any(u.endswith("/hold-music.wav") for u in answer["prompt_uris"])
    assert music["name"] == "hold-music"
    assert music["uri"].endswith("/static/ivr/prompts/hold-music.wav")
    assert call.waiting_since is not None
    # The board counts down to the end of the wait and says what comes then.
    assert call.wait_ends_at == session.deadline
    assert call.wait_then == "go on to operator"
    row = call_summaries([call])[0]
    assert (row["wait_ends_at"], row["wait_then"]) == (
        iso(session.deadline),
        "go on to operator",
    )
    assert (session.phase, session.current_step) == ("queued", "queue")
    assert session.awaiting_action_id == call.actions.order_by("pk").last().pk

    # The music played its whole length: again at once.
    runtime.handle_activity(
        call.pk,
        finished_actions=[(session.awaiting_action_id, "play_prompt", "completed")],
        now=session.replay_at,
    )
    assert [kind for kind, _ in actions(call)][-1] == "play_prompt"
    assert call.actions.filter(kind="play_prompt").count() == 2


def test_taking_the_call_stops_the_flow_and_the_music(
    queued_call: tuple[Call, IvrSession], bob: Any
) -> None:
    call, session = queued_call

    taken = supervisors.take_call(call.pk, actor=bob)

    assert [a.kind for a in taken] == ["cancel_media_processing"]
    session.refresh_from_db()
    assert (session.status, session.outcome) == ("completed", "taken by bob")
    taken_call = Call.objects.get(pk=call.pk)
    assert (taken_call.waiting_since, taken_call.wait_ends_at) == (None, None)
    assert taken_call.wait_then == ""
    assert AuditEntry.objects.filter(actor=bob, action="take").exists()
    # The wait running out later moves nothing: the flow is over.
    assert runtime.sweep_timeouts(timezone.now() + timedelta(minutes=5)) == 0
    assert not call.actions.filter(kind="transfer").exists()


def test_the_sweep_falls_back_to_next_once_nobody_took_the_call(
    queued_call: tuple[Call, IvrSession],
) -> None:
    call, session = queued_call
    deadline = session.deadline
    assert deadline is not None

    assert runtime.sweep_timeouts(deadline - timedelta(seconds=1)) == 0
    assert runtime.sweep_timeouts(deadline) == 1

    session.refresh_from_db()
    assert (session.current_step, session.phase, session.outcome) == (
        "operator",
        "transferring",
        "nobody took the call",
    )
    assert [kind for kind, _ in actions(call)][-2:] == [
        "cancel_media_processing",
        "transfer",
    ]
    assert actions(call)[-1][1]["target"]["display_name"] == "Operator"
    assert Call.objects.get(pk=call.pk).waiting_since is None
    # Nobody took it, so no "take" is on the trail.
    assert not AuditEntry.objects.filter(call=call, action="take").exists()
    assert runtime.sweep_timeouts(deadline + timedelta(minutes=1)) == 0


def test_a_caller_hanging_up_in_the_queue_leaves_the_board(
    queued_call: tuple[Call, IvrSession],
) -> None:
    call, session = queued_call
    Call.objects.filter(pk=call.pk).update(state=CallState.TERMINATED)

    runtime.handle_activity(call.pk, terminated=True)

    session.refresh_from_db()
    assert (session.status, session.deadline) == ("ended", None)
    assert Call.objects.get(pk=call.pk).waiting_since is None
    assert not AuditEntry.objects.filter(call=call, action="take").exists()


# --- the hold flow (answered to hold from the board) -----------------------------------


@pytest.fixture
def held_call(db: Any, bob: Any) -> Call:
    """A call a supervisor answered to hold: music until a person takes it."""
    call = incoming_call()
    supervisors.answer_into_flow(call.pk, supervisors.HOLD, actor=bob)
    Call.objects.filter(pk=call.pk).update(state=CallState.ESTABLISHED)
    runtime.handle_activity(call.pk, state="established", state_changed=True)
    held = Call.objects.get(pk=call.pk)
    assert held.waiting_since is not None
    return held


def test_a_caller_hanging_up_while_held_no_longer_waits(held_call: Call) -> None:
    Call.objects.filter(pk=held_call.pk).update(state=CallState.TERMINATED)

    with mock.patch("callbot.calls.live.publish_on_commit") as published:
        runtime.handle_activity(held_call.pk, terminated=True)

    ended = Call.objects.get(pk=held_call.pk)
    assert ended.waiting_since is None
    assert IvrSession.objects.get(call=held_call).status == "ended"
    # The board hears that nobody waits any more; no "take" is on the trail.
    [[deltas]] = [c.args for c in published.call_args_list]
    assert deltas[-1].call["waiting_since"] is None
    assert not AuditEntry.objects.filter(call=held_call, action="take").exists()


def plays(call: Call) -> int:
    return sum(kind == "play_prompt" for kind, _ in actions(call))


def test_the_held_call_is_not_listened_to_for_keys(held_call: Call) -> None:
    assert [kind for kind, _ in actions(held_call)] == ["answer", "play_prompt"]


def test_held_music_played_at_once_plays_again_only_after_its_loop_time(
    held_call: Call,
) -> None:
    """Graph (or the emulator) reporting the music played in a moment does not
    make the hold ask for it again at once: the sweep plays it when
    ``LOOP_SECONDS`` have passed since it began."""
    session = IvrSession.objects.get(call=held_call)
    began = session.replay_at - timedelta(seconds=LOOP_SECONDS)
    played = [(session.awaiting_action_id, "play_prompt", "completed")]

    runtime.handle_activity(
        held_call.pk, finished_actions=played, now=began + timedelta(seconds=0.2)
    )

    assert plays(held_call) == 1
    session.refresh_from_db()
    assert (session.phase, session.awaiting_action_id) == ("playing", None)
    assert runtime.sweep_timeouts(session.replay_at - timedelta(seconds=1)) == 0
    assert plays(held_call) == 1
    assert runtime.sweep_timeouts(session.replay_at) == 1
    assert plays(held_call) == 2
    # Playing again: the sweep leaves it alone until that playback is over.
    session.refresh_from_db()
    assert session.awaiting_action_id is not None
    assert runtime.sweep_timeouts(session.replay_at + timedelta(seconds=60)) == 0
    assert plays(held_call) == 2


def test_held_music_that_plays_its_whole_length_loops_without_a_gap(
    held_call: Call,
) -> None:
    session = IvrSession.objects.get(call=held_call)
    played = [(session.awaiting_action_id, "play_prompt", "completed")]

    runtime.handle_activity(
        held_call.pk, finished_actions=played, now=session.replay_at
    )

    assert plays(held_call) == 2
