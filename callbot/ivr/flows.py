"""IVR flows as data, and the pure step function that runs them.

A flow is a start step id plus a list of steps (plain JSON, edited in the admin).
``parse_flow`` turns that JSON into typed steps and reports every problem at once
(unknown step ids, unreachable steps, bad timers); ``advance`` moves one call's
``FlowState`` on one ``Event`` and returns the ``Command``s to perform.

Pure Python: no ORM, no settings, no clock. What the Graph contract allows (record
timers, stop tones, keys, identities) comes from ``callbot.graph.limits``, the values
the request builders check, never a copy here. The runtime (``callbot.ivr.runtime``)
loads the state, calls ``advance``, performs the commands through
``callbot.calls.services`` and stores the new state. A command with ``wait`` set is
one the flow waits on: the runtime records its Action id in ``FlowState.awaiting``,
and only that Action finishing moves the flow on (a supervisor's prompt does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from callbot.graph.limits import (
    DTMF_KEYS,
    E164_PATTERN,
    GUID_PATTERN,
    RECORD_TIMER_RANGE,
    STOP_TONE_CHARS,
)

STEP_TYPES = (
    "play",
    "collect",
    "record",
    "transfer",
    "redirect",
    "invite",
    "supervisors",
    "hang_up",
)
# The flow's own choice, not Graph's: which key ends an entry early ("" for none).
TERMINATORS = frozenset({"", "#", "*"})
# The operator named in settings (IVR_OPERATOR_USER_ID); resolved by the runtime.
OPERATOR = "operator"
# The shipped prompt a supervisors step loops while the caller waits for a person.
HOLD_MUSIC = "hold-music"
# How long a supervisors step may keep a caller waiting, in seconds.
MAX_WAIT_RANGE = (5, 3600)
# A prompt looped while a caller waits (a supervisors step's music, a play step
# that goes on at itself, such as the board's hold) starts again at most once in
# this many seconds: when Graph reports the last playback over (the operation's
# completion, contract §6.9) and this long after it began, whichever is later. A
# prompt this long or longer (the shipped hold music is) loops without a gap; a
# shorter one, or a playback reported over at once (the emulator plays every
# prompt in a fifth of a second), waits for the timeout sweep's ``Tick`` instead
# of being requested again several times a second.
LOOP_SECONDS = 16

Target = Mapping[str, str]


class FlowError(ValueError):
    """A flow definition that cannot run; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


# --- steps ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    id: str
    type: str
    prompt: str = ""
    next: str = ""
    # collect
    timeout: int = 5
    max_digits: int = 1
    terminator: str = "#"
    branches: Mapping[str, str] = field(default_factory=dict)
    default: str = ""
    on_timeout: str = ""
    # record
    max_record_duration: int = 10
    initial_silence_timeout: int = 5
    max_silence_timeout: int = 2
    stop_tones: tuple[str, ...] = ("#",)
    play_beep: bool = True
    # transfer / redirect / invite
    target: str | Target = ""
    on_failure: str = ""
    # supervisors
    max_wait: int = 60

    def exits(self) -> list[str]:
        """Step ids this step can move to."""
        found = [self.next, self.default, self.on_timeout, self.on_failure]
        found.extend(self.branches.values())
        return [step_id for step_id in found if step_id]


@dataclass(frozen=True)
class Flow:
    start: str
    steps: Mapping[str, Step]

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]

    @property
    def listens_for_keys(self) -> bool:
        """Whether any step acts on keys pressed (only a collect step does): the
        others need no tone subscription."""
        return any(step.type == "collect" for step in self.steps.values())


_COMMON = {"id", "type", "note"}
_ALLOWED_KEYS: dict[str, set[str]] = {
    "play": {"prompt", "next"},
    "collect": {
        "prompt",
        "timeout",
        "max_digits",
        "terminator",
        "branches",
        "default",
        "on_timeout",
    },
    "record": {
        "prompt",
        "next",
        "max_record_duration",
        "initial_silence_timeout",
        "max_silence_timeout",
        "stop_tones",
        "play_beep",
    },
    "transfer": {"target", "on_failure"},
    "redirect": {"target"},
    "invite": {"target", "next", "on_failure"},
    "supervisors": {"prompt", "max_wait", "next"},
    "hang_up": set(),
}


def _int(
    raw: Mapping[str, Any],
    key: str,
    default: int,
    low: int,
    high: int,
    where: str,
    problems: list[str],
) -> int:
    value = raw.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    problems.append(f"{where}: {key} must be a whole number from {low} to {high}")
    return default


def _listed(keys: Iterable[str]) -> str:
    """Keys for a person to read: digits, then symbols, then letters."""
    return " ".join(sorted(keys, key=lambda k: (not k.isdigit(), k.isalpha(), k)))


def _target(
    raw: Mapping[str, Any], where: str, problems: list[str]
) -> str | dict[str, str]:
    value = raw.get("target")
    if value == OPERATOR:
        return OPERATOR
    if isinstance(value, Mapping):
        user_id, phone = value.get("user_id"), value.get("phone")
        if isinstance(user_id, str) and user_id and not phone:
            if not GUID_PATTERN.fullmatch(user_id):
                problems.append(
                    f"{where}: target user_id {user_id!r} is not an Azure AD object "
                    "id (a GUID)"
                )
                return ""
            target = {"user_id": user_id}
            if isinstance(value.get("display_name"), str) and value["display_name"]:
                target["display_name"] = value["display_name"]
            return target
        if isinstance(phone, str) and phone and not user_id:
            if not E164_PATTERN.fullmatch(phone):
                problems.append(
                    f"{where}: target phone {phone!r} is not a number in +E.164 "
                    "form, e.g. +14255550199"
                )
                return ""
            return {"phone": phone}
    problems.append(
        f'{where}: target must be "operator", {{"user_id": "<Azure AD object id>"}} '
        'or {"phone": "+<number>"}'
    )
    return ""


def _parse_step(raw: Any, index: int, problems: list[str]) -> Step | None:
    if not isinstance(raw, Mapping):
        problems.append(f"Step {index + 1} must be an object")
        return None
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not step_id.strip():
        problems.append(f"Step {index + 1} needs an id")
        return None
    where = f"Step {step_id!r}"
    kind = raw.get("type")
    if kind not in _ALLOWED_KEYS:
        problems.append(f"{where}: type must be one of {', '.join(STEP_TYPES)}")
        return None
    unknown = set(raw) - _COMMON - _ALLOWED_KEYS[kind]
    if unknown:
        problems.append(f"{where}: {kind} does not take {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {"id": step_id, "type": kind}
    for key in ("prompt", "next", "default", "on_timeout", "on_failure"):
        if key in raw:
            if not isinstance(raw[key], str):
                problems.append(f"{where}: {key} must be text")
            else:
                values[key] = raw[key]
    if kind == "play" and not values.get("prompt"):
        problems.append(f"{where}: play needs a prompt")
    if kind in ("play", "record") and not values.get("next"):
        problems.append(f"{where}: {kind} needs a next step")
    if kind == "collect":
        values["timeout"] = _int(raw, "timeout", 5, 1, 60, where, problems)
        values["max_digits"] = _int(raw, "max_digits", 1, 1, 20, where, problems)
        terminator = raw.get("terminator", "#")
        if terminator not in TERMINATORS:
            problems.append(f'{where}: terminator must be "#", "*" or ""')
        else:
            values["terminator"] = terminator
        branches = raw.get("branches", {})
        if not isinstance(branches, Mapping) or not branches:
            problems.append(f"{where}: collect needs branches (digits -> step id)")
            branches = {}
        clean: dict[str, str] = {}
        for digits, target in branches.items():
            # Pressed keys arrive in lower case (calls.callstate.tone_key): "A" means "a".
            keys = str(digits).lower()
            if not digits or set(str(digits)) - DTMF_KEYS:
                problems.append(f"{where}: branch {digits!r} is not a key sequence")
            elif not isinstance(target, str) or not target:
                problems.append(f"{where}: branch {digits!r} must name a step")
            elif len(digits) > values["max_digits"]:
                problems.append(
                    f"{where}: branch {digits!r} is longer than max_digits "
                    f"({values['max_digits']})"
                )
            elif keys in clean:
                problems.append(f"{where}: branch {digits!r} is given twice")
            else:
                clean[keys] = target
        values["branches"] = clean
        if not values.get("default"):
            problems.append(
                f"{where}: collect needs a default step (for keys no branch matches)"
            )
    if kind == "record":
        low, high = RECORD_TIMER_RANGE
        for key, default in (
            ("max_record_duration", 10),
            ("initial_silence_timeout", 5),
            ("max_silence_timeout", 2),
        ):
            values[key] = _int(raw, key, default, low, high, where, problems)
        stop_tones = raw.get("stop_tones", ["#"])
        if not isinstance(stop_tones, list) or any(
            not isinstance(t, str) or t not in STOP_TONE_CHARS for t in stop_tones
        ):
            problems.append(
                f"{where}: stop_tones must be a list of keys from "
                f"{_listed(STOP_TONE_CHARS)}, such as '#'"
            )
        else:
            values["stop_tones"] = tuple(stop_tones)
        play_beep = raw.get("play_beep", True)
        if not isinstance(play_beep, bool):
            problems.append(f"{where}: play_beep must be true or false")
        else:
            values["play_beep"] = play_beep
    if kind in ("transfer", "redirect", "invite"):
        values["target"] = _target(raw, where, problems)
    if kind == "supervisors":
        if "max_wait" not in raw:
            problems.append(
                f"{where}: supervisors needs max_wait (seconds the caller waits "
                "for a person)"
            )
        low, high = MAX_WAIT_RANGE
        values["max_wait"] = _int(raw, "max_wait", 60, low, high, where, problems)
        if not values.get("next"):
            problems.append(
                f"{where}: supervisors needs a next step (for when nobody takes "
                "the call in max_wait seconds)"
            )
        elif values["next"] == step_id:
            problems.append(
                f"{where}: supervisors cannot go on at itself; raise max_wait "
                "to wait longer"
            )
        values["prompt"] = values.get("prompt") or HOLD_MUSIC
    return Step(**values)


def parse_flow(
    start: str, steps: Any, known_prompts: Iterable[str] | None = None
) -> Flow:
    """Check a flow definition and return it typed.

    Raises ``FlowError`` listing every problem: malformed steps, duplicate or unknown
    step ids, steps no path from ``start`` reaches, a redirect anywhere but first (a
    call can only be redirected before it is answered), and prompt names missing from
    ``known_prompts`` (when given).
    """
    problems: list[str] = []
    if not isinstance(steps, list) or not steps:
        raise FlowError(["A flow needs a list of steps"])
    parsed: dict[str, Step] = {}
    for index, raw in enumerate(steps):
        step = _parse_step(raw, index, problems)
        if step is None:
            continue
        if step.id in parsed:
            problems.append(f"Step id {step.id!r} is used twice")
        parsed[step.id] = step
    if start not in parsed:
        problems.append(f"The start step {start!r} is not one of the steps")
    for step in parsed.values():
        for exit_id in step.exits():
            if exit_id not in parsed:
                problems.append(f"Step {step.id!r} leads to unknown step {exit_id!r}")
    if start in parsed:
        reached = {start}
        frontier = [start]
        while frontier:
            for exit_id in parsed[frontier.pop()].exits():
                if exit_id in parsed and exit_id not in reached:
                    reached.add(exit_id)
                    frontier.append(exit_id)
        for step_id in parsed:
            if step_id not in reached:
                problems.append(f"Step {step_id!r} is unreachable from {start!r}")
    for step in parsed.values():
        if step.type == "redirect" and step.id != start:
            problems.append(
                f"Step {step.id!r}: a redirect can only be the start step (Graph "
                "redirects unanswered calls only); use transfer after answering"
            )
    if known_prompts is not None:
        known = set(known_prompts)
        for step in parsed.values():
            if step.prompt and step.prompt not in known:
                problems.append(f"Step {step.id!r}: no prompt named {step.prompt!r}")
    if problems:
        raise FlowError(problems)
    return Flow(start=start, steps=parsed)


# --- state, events, commands ---------------------------------------------------------------
Phase = Literal[
    "new",
    "answering",
    "playing",
    "prompting",
    "collecting",
    "recording",
    "transferring",
    "inviting",
    "queued",
    "done",
]
Status = Literal["running", "completed", "failed", "ended"]


@dataclass(frozen=True)
class FlowState:
    """Where one call is in its flow. JSON-friendly through ``to_json``/``from_json``."""

    step: str = ""
    phase: Phase = "new"
    digits: str = ""
    deadline: datetime | None = None
    awaiting: int | None = None
    status: Status = "running"
    outcome: str = ""
    # When a looped prompt may start again (``LOOP_SECONDS``); None when none loops.
    replay_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status != "running"


@dataclass(frozen=True)
class Command:
    """One request to make through ``request_action``; ``prompt`` names are resolved
    to URIs and the ``operator`` target to an identity by the runtime. The one kind
    that is not a request, ``set_waiting``, marks the call waiting for a person."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    wait: bool = False


@dataclass(frozen=True)
class Start:
    now: datetime


@dataclass(frozen=True)
class Established:
    now: datetime


@dataclass(frozen=True)
class Tones:
    tones: tuple[str, ...]
    now: datetime


@dataclass(frozen=True)
class ActionFinished:
    action_id: int
    status: str  # "completed" or "failed"
    now: datetime


@dataclass(frozen=True)
class Tick:
    now: datetime


@dataclass(frozen=True)
class Ended:
    now: datetime


@dataclass(frozen=True)
class Refused:
    """The runtime could not make a request (the service refused it)."""

    kind: str
    message: str
    now: datetime


Event = Start | Established | Tones | ActionFinished | Tick | Ended | Refused


def advance(
    flow: Flow, state: FlowState, event: Event
) -> tuple[FlowState, list[Command]]:
    """Move ``state`` on ``event``; return the new state and the commands to perform.

    1. A finished session ignores everything; ``Ended`` finishes any session.
    2. ``Start`` answers the call (or redirects it when the flow starts with a
       redirect); ``Established`` enters the start step, subscribing to tones
       first when the flow has a collect step (only those act on keys).
    3. Tones count while a collect step prompts or listens; keys pressed during its
       prompt barge in (the prompt is cancelled once the entry is complete), keys
       pressed during a play step just before it are typed ahead.
    4. The awaited Action finishing moves the flow on; other Actions are ignored.
    5. ``Tick`` past a collect step's deadline takes its timeout branch (or, with
       some keys pressed, routes what was entered); past a supervisors step's
       deadline it stops the hold music and goes on at ``next``.
    6. A supervisors step marks the call waiting for a person and loops its music;
       a person taking the call ends the session outside the flow
       (``supervisors.take_call``). A looped prompt (that music, a play step
       going on at itself) starts again once its playback is over and
       ``LOOP_SECONDS`` after it began: a ``Tick`` past ``replay_at`` plays it
       when the playback ended sooner.
    """
    if state.finished:
        return state, []
    if isinstance(event, Ended):
        if state.phase == "transferring":
            # A transfer ends the bot's leg (contract §6.7): that is its success.
            target = flow.step(state.step).target
            return _finish(state, f"transferred to {_label(target)}"), []
        # A caller who hangs up while queued no longer waits for a person.
        unqueue = [_set_waiting(False)] if state.phase == "queued" else []
        return replace(
            state,
            status="ended",
            phase="done",
            deadline=None,
            awaiting=None,
            replay_at=None,
        ), unqueue
    if isinstance(event, Refused):
        # A caller no longer held leaves the supervisors' queue.
        unqueue = [_set_waiting(False)] if state.phase == "queued" else []
        failed = replace(
            state,
            status="failed",
            phase="done",
            deadline=None,
            awaiting=None,
            replay_at=None,
            outcome=f"{event.kind} refused: {event.message}",
        )
        if event.kind in ("hang_up", "answer", "redirect"):
            return failed, unqueue
        return failed, [*unqueue, Command("hang_up")]
    if isinstance(event, Start):
        if state.phase != "new":
            return state, []
        first = flow.step(flow.start)
        if first.type == "redirect":
            return _finish(
                replace(state, step=first.id), f"redirected to {_label(first.target)}"
            ), [Command("redirect", {"target": first.target})]
        return replace(state, phase="answering"), [Command("answer")]
    if isinstance(event, Established):
        if state.phase != "answering":
            return state, []
        new_state, commands = _enter(flow, state, flow.start, event.now)
        if flow.listens_for_keys:
            commands = [Command("subscribe_to_tone"), *commands]
        return new_state, commands
    if isinstance(event, Tones):
        return _on_tones(flow, state, event)
    if isinstance(event, ActionFinished):
        if state.awaiting is None or event.action_id != state.awaiting:
            return state, []
        return _on_finished(flow, replace(state, awaiting=None), event)
    if isinstance(event, Tick):
        if (
            state.phase == "collecting"
            and state.deadline is not None
            and event.now >= state.deadline
        ):
            step = flow.step(state.step)
            if state.digits:
                return _route(flow, state, step, state.digits, event.now, False)
            return _enter(
                flow,
                replace(state, outcome="no keys pressed"),
                step.on_timeout or step.default,
                event.now,
            )
        if (
            state.phase == "queued"
            and state.deadline is not None
            and event.now >= state.deadline
        ):
            # Nobody took the call: stop the music and carry on at ``next``.
            step = flow.step(state.step)
            new_state, commands = _enter(
                flow,
                replace(state, outcome="nobody took the call"),
                step.next,
                event.now,
            )
            return new_state, [
                _set_waiting(False),
                Command("cancel_media_processing"),
                *commands,
            ]
        if _replay_due(state, event.now):
            return _replay(flow, state, event.now)
        return state, []
    raise TypeError(f"unknown event {event!r}")


def _finish(state: FlowState, outcome: str) -> FlowState:
    return replace(
        state,
        status="completed",
        phase="done",
        deadline=None,
        awaiting=None,
        replay_at=None,
        digits="",
        outcome=outcome,
    )


def _label(target: str | Target) -> str:
    if isinstance(target, str):
        return target
    return (
        target.get("display_name") or target.get("user_id") or target.get("phone", "")
    )


def _enter(
    flow: Flow, state: FlowState, step_id: str, now: datetime
) -> tuple[FlowState, list[Command]]:
    """Begin ``step_id``: the commands it starts with and the phase it waits in."""
    step = flow.step(step_id)
    # Keys pressed while a play step ran, typed ahead for the collect step after it.
    typed = state.digits if state.phase == "playing" else ""
    state = replace(
        state, step=step_id, digits="", deadline=None, awaiting=None, replay_at=None
    )
    if step.type == "play":
        if step.next == step.id:
            return _loop(replace(state, phase="playing"), step, now)
        return replace(state, phase="playing"), [
            Command("play_prompt", {"prompt": step.prompt}, wait=True)
        ]
    if step.type == "collect":
        if typed:
            # The caller already knows the menu: skip its prompt.
            listening = _listen(state, step, now)
            return _on_tones(flow, listening, Tones(tuple(typed), now))
        if step.prompt:
            return replace(state, phase="prompting"), [
                Command("play_prompt", {"prompt": step.prompt}, wait=True)
            ]
        return _listen(state, step, now), []
    if step.type == "record":
        params: dict[str, Any] = {
            "max_record_duration": step.max_record_duration,
            "initial_silence_timeout": step.initial_silence_timeout,
            "max_silence_timeout": step.max_silence_timeout,
            "stop_tones": list(step.stop_tones),
            "play_beep": step.play_beep,
        }
        if step.prompt:
            params["prompt"] = step.prompt
        return replace(state, phase="recording"), [
            Command("record_response", params, wait=True)
        ]
    if step.type == "transfer":
        return replace(state, phase="transferring"), [
            Command("transfer", {"target": step.target}, wait=True)
        ]
    if step.type == "invite":
        return replace(state, phase="inviting"), [
            Command("invite", {"target": step.target}, wait=True)
        ]
    if step.type == "supervisors":
        # Wait on the supervisors' board (Take) with music, until the deadline.
        queued = replace(
            state, phase="queued", deadline=now + timedelta(seconds=step.max_wait)
        )
        then = f"go on to {step.next}" if step.next else "end the flow"
        queued, music = _loop(queued, step, now)
        return queued, [_set_waiting(True, then), *music]
    if step.type == "hang_up":
        return _finish(state, state.outcome or "hung up"), [Command("hang_up")]
    # A redirect past the start is rejected by parse_flow; never answer twice.
    return _finish(state, "redirect after answering is not possible"), [
        Command("hang_up")
    ]


def _set_waiting(waiting: bool, then: str = "") -> Command:
    """Not a Graph request: the runtime marks the call waiting for a person (the
    board offers Take) or no longer waiting; ``then``: what the flow does when the
    wait is over, in words for the board."""
    params: dict[str, Any] = {"waiting": waiting}
    if then:
        params["then"] = then
    return Command("set_waiting", params)


def _loop(
    state: FlowState, step: Step, now: datetime
) -> tuple[FlowState, list[Command]]:
    """Play ``step``'s prompt once more of a loop; the next may start no sooner
    than ``LOOP_SECONDS`` from now."""
    replay_at = now + timedelta(seconds=LOOP_SECONDS)
    return replace(state, replay_at=replay_at), [
        Command("play_prompt", {"prompt": step.prompt}, wait=True)
    ]


def _replay_due(state: FlowState, now: datetime) -> bool:
    """A looped prompt whose playback is over may start again now."""
    return (
        state.phase in ("playing", "queued")
        and state.awaiting is None
        and state.replay_at is not None
        and now >= state.replay_at
    )


def _replay(
    flow: Flow, state: FlowState, now: datetime
) -> tuple[FlowState, list[Command]]:
    return _loop(state, flow.step(state.step), now)


def _listen(state: FlowState, step: Step, now: datetime) -> FlowState:
    return replace(
        state, phase="collecting", deadline=now + timedelta(seconds=step.timeout)
    )


def _on_tones(
    flow: Flow, state: FlowState, event: Tones
) -> tuple[FlowState, list[Command]]:
    if state.phase not in ("playing", "prompting", "collecting"):
        return state, []
    step = flow.step(state.step)
    if state.phase == "playing":
        if flow.step(step.next).type == "collect":
            return replace(state, digits=state.digits + "".join(event.tones)), []
        return state, []
    digits = state.digits
    for tone in event.tones:
        if tone == step.terminator and step.terminator:
            return _route(flow, state, step, digits, event.now, True)
        digits += tone
        if _complete(step, digits):
            return _route(flow, state, step, digits, event.now, True)
    state = replace(state, digits=digits)
    if state.phase == "collecting":
        # Each key restarts the inter-digit timer.
        state = _listen(state, step, event.now)
    return state, []


def _complete(step: Step, digits: str) -> bool:
    """An entry is complete at max_digits, or when it matches a branch no longer
    branch starts with (so "0" reaches the operator at once beside "01")."""
    if len(digits) >= step.max_digits:
        return True
    if digits in step.branches:
        return not any(
            other != digits and other.startswith(digits) for other in step.branches
        )
    return False


def _route(
    flow: Flow,
    state: FlowState,
    step: Step,
    digits: str,
    now: datetime,
    cancel_prompt: bool,
) -> tuple[FlowState, list[Command]]:
    next_id = step.branches.get(digits)
    outcome = f"pressed {digits}" if digits else "pressed nothing"
    if next_id is None:
        next_id = step.default
        outcome = f"pressed {digits or 'only the terminator'} (no such option)"
    commands: list[Command] = []
    if cancel_prompt and state.phase == "prompting":
        commands.append(Command("cancel_media_processing"))
    new_state, more = _enter(flow, replace(state, outcome=outcome), next_id, now)
    return new_state, commands + more


def _on_finished(
    flow: Flow, state: FlowState, event: ActionFinished
) -> tuple[FlowState, list[Command]]:
    step = flow.step(state.step)
    ok = event.status == "completed"
    if state.phase == "prompting":
        # Played or cancelled: either way the caller may now press keys.
        return _listen(state, step, event.now), []
    if state.phase == "playing" and state.replay_at is not None:
        # A looped prompt (played or not): again once LOOP_SECONDS have passed
        # since it began, now or on the sweep's Tick.
        if _replay_due(state, event.now):
            return _replay(flow, state, event.now)
        return state, []
    if state.phase in ("playing", "recording"):
        return _enter(flow, state, step.next, event.now)
    if state.phase == "queued":
        if ok:
            # The music ended and nobody has taken the call yet: play it again,
            # now or on the sweep's Tick (at once for a session stored before
            # replay_at was kept: nothing else would restart its music).
            if state.replay_at is None or _replay_due(state, event.now):
                return _replay(flow, state, event.now)
            return state, []
        new_state, commands = _enter(
            flow, replace(state, outcome="hold music failed"), step.next, event.now
        )
        return new_state, [_set_waiting(False), *commands]
    if state.phase == "transferring":
        if ok:
            return _finish(state, f"transferred to {_label(step.target)}"), []
        if step.on_failure:
            return _enter(
                flow,
                replace(state, outcome="transfer failed"),
                step.on_failure,
                event.now,
            )
        return replace(_finish(state, "transfer failed"), status="failed"), [
            Command("hang_up")
        ]
    if state.phase == "inviting":
        if ok:
            invited = f"invited {_label(step.target)}"
            if step.next:
                return _enter(
                    flow, replace(state, outcome=invited), step.next, event.now
                )
            return _finish(state, invited), []
        if step.on_failure:
            return _enter(
                flow,
                replace(state, outcome="invite failed"),
                step.on_failure,
                event.now,
            )
        return replace(_finish(state, "invite failed"), status="failed"), [
            Command("hang_up")
        ]
    return state, []
