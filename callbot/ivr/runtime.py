"""The bot's behaviour at run time: apply the call policy to new incoming calls and
move IVR sessions on call activity and on timeouts (tone collection, and the wait
of a caller queued for the supervisors).

Acts only through ``callbot.calls.services.request_action(..., actor=None)``; never
writes calls, participants or actions itself, and never calls Graph. Each step is one
transaction: lock the call (the order ingest and services use), then the session,
run the pure ``flows.advance``, request its commands, store the new state.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Model, OuterRef, Q
from django.utils import timezone

from callbot.calls import audit, lockedrows
from callbot.calls.access import ActionRefusedError, Actor
from callbot.calls.models import Action, Call
from callbot.calls.services import request_action, set_wait_limit, set_waiting
from callbot.calls.states import CallDirection, CallKind, CallState
from callbot.ivr import flows
from callbot.ivr.models import (
    CallPolicy,
    Handoff,
    HeldActivity,
    IvrFlow,
    IvrSession,
)
from callbot.ivr.prompts import PromptNotFoundError, prompt_uri, prompt_uris

logger = logging.getLogger(__name__)

DECISIONS = (Action.Kind.ANSWER, Action.Kind.REJECT, Action.Kind.REDIRECT)


# --- choosing a policy -------------------------------------------------------------------
def called_identities(targets: Any) -> tuple[set[str], set[str]]:
    """The ids and phone numbers a call was made to, from its ``targets`` JSON.

    Ids are lower-cased (Graph ids compare case-insensitively); numbers are kept as
    written in +E.164. Parsed structurally, as the contract's §7.4 advises.
    """
    ids: set[str] = set()
    numbers: set[str] = set()
    if not isinstance(targets, list):
        return ids, numbers
    for target in targets:
        identity = target.get("identity") if isinstance(target, Mapping) else None
        if not isinstance(identity, Mapping):
            continue
        for member_name, member in identity.items():
            if not isinstance(member, Mapping) or not member.get("id"):
                continue
            value = str(member["id"])
            if member_name == "phone" or value.startswith("+"):
                numbers.add(value.replace(" ", ""))
            else:
                ids.add(value.lower())
    return ids, numbers


def choose_policy(call: Call) -> CallPolicy | None:
    """The enabled policy for ``call``: lowest priority number first; specific
    matches (identity, number) before a default of the same priority."""
    ids, numbers = called_identities(call.targets)
    kinds = ["any", "peer_to_peer" if call.kind == CallKind.PEER_TO_PEER else "group"]
    candidates = (
        CallPolicy.objects.filter(enabled=True, call_kinds__in=kinds)
        .filter(
            Q(match=CallPolicy.Match.DEFAULT)
            | Q(match=CallPolicy.Match.IDENTITY, match_value__in=ids)
            | Q(match=CallPolicy.Match.NUMBER, match_value__in=numbers)
        )
        # The winner's flow comes with it: answering into it needs its steps.
        .select_related("flow")
    )
    found = sorted(
        candidates,
        key=lambda p: (p.priority, p.match == CallPolicy.Match.DEFAULT, p.pk),
    )
    return found[0] if found else None


def apply_policy(call_id: int, now: datetime | None = None) -> str:
    """Decide a new incoming call: answer (maybe into a flow), reject, redirect, or
    hand it to the supervisors (a ``Handoff`` whose fallback runs later).

    Preconditions: the call is ``incoming``. Does nothing when it is not, when a
    decision was already requested (a redelivered task), or when no policy matches
    (the call rings until a supervisor answers or Microsoft ends it after 15 s).
    Returns what was done, for logs and tests. A refusal is audited by the service
    and logged here.
    """
    now = now or timezone.now()
    with transaction.atomic(), audit.written_last():
        call = _locked_call(call_id)
        if call is None or call.state != CallState.INCOMING:
            return "not incoming"
        if call.direction != CallDirection.INCOMING:
            return "not incoming"
        if _decided(call_id):
            return "already decided"
        policy = choose_policy(call)
        if policy is None:
            logger.info(
                "no call policy matches call %s", call.pk, extra={"call_id": call.pk}
            )
            return "no policy"
        if policy.action == CallPolicy.Do.SUPERVISORS:
            # The call rings on the supervisors' board; the hand-off sweep
            # (``supervisors.sweep_handoffs``) applies the fallback when the wait
            # is over and nobody decided.
            handoff = Handoff.objects.create(
                call=call,
                policy=policy,
                wait_until=call.created_at + timedelta(seconds=policy.max_wait_seconds),
            )
            # The board counts down to the fallback and says what it is.
            set_wait_limit(call, handoff.wait_until, policy.decision_text())
            return "handed to the supervisors"
        return decide(call, policy, now)


def _decided(call_id: int) -> bool:
    """Whether a decision was asked for, a flow started or a hand-off made on the
    call, in one query. Read after the call's lock is taken (not in the locking
    statement), so PostgreSQL answers from a snapshot that sees what a
    concurrent decision committed while this one waited for the lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            _decided_sql(), [call_id, *(str(d) for d in DECISIONS), call_id, call_id]
        )
        return cursor.fetchone() is not None


@functools.lru_cache(maxsize=1)
def _decided_sql() -> str:
    """``_decided``'s statement, ``decided_calls`` for one call. Plain SQL, not
    a queryset: every ringing call asks it, and building the three ``Exists``
    cost Django several times what the database spent answering them."""
    quote = connection.ops.quote_name

    def exists(model: type[Model], more: str = "") -> str:
        table = quote(model._meta.db_table)
        field: Any = model._meta.get_field("call")
        call_id = quote(field.column)
        # Only our own quoted names and placeholders are interpolated.
        return f"EXISTS (SELECT 1 FROM {table} WHERE {call_id} = %s{more})"  # noqa: S608

    kind = quote(Action._meta.get_field("kind").column)
    decisions = ", ".join(["%s"] * len(DECISIONS))
    return (
        f"SELECT 1 WHERE {exists(Action, f' AND {kind} IN ({decisions})')} "
        f"OR {exists(IvrSession)} OR {exists(Handoff)}"
    )


def decided_calls() -> Q:
    """Calls with a decision asked for, a flow started or a hand-off made."""
    return (
        Q(Exists(Action.objects.filter(call=OuterRef("pk"), kind__in=DECISIONS)))
        | Q(Exists(IvrSession.objects.filter(call=OuterRef("pk"))))
        | Q(Exists(Handoff.objects.filter(call=OuterRef("pk"))))
    )


def decide(call: Call, policy: CallPolicy, now: datetime) -> str:
    """Carry out ``policy``'s own decision (its action, or a hand-off's fallback)
    on ``call``, locked and still incoming. Returns what was done; a refusal is
    audited by the service and logged here."""
    try:
        if policy.decision == CallPolicy.Do.REJECT:
            request_action(
                "reject",
                actor=None,
                call=call,
                params={"reason": policy.reject_reason},
                call_locked=True,
            )
            return "rejected"
        if policy.decision == CallPolicy.Do.REDIRECT:
            request_action(
                "redirect",
                actor=None,
                call=call,
                params={"target": policy.target()},
                call_locked=True,
            )
            return "redirected"
        if policy.flow is None:
            request_action("answer", actor=None, call=call, call_locked=True)
            return "answered"
    except ActionRefusedError as refused:
        logger.warning(
            "call policy %s refused on call %s: %s",
            policy.pk,
            call.pk,
            refused.message,
            extra={"call_id": call.pk},
        )
        return f"refused: {refused.message}"
    start_flow(call, policy.flow, now, policy=policy)
    return "answered into a flow"


def start_flow(
    call: Call,
    flow: IvrFlow | None,
    now: datetime,
    *,
    policy: CallPolicy | None = None,
    actor: Actor = None,
    builtin: tuple[str, list[dict[str, Any]]] | None = None,
    requested: list[Action] | None = None,
) -> IvrSession:
    """Run ``flow`` (or a ``builtin`` (start, steps) of Callbot's own) on ``call``,
    locked and incoming: its first step answers the call, asked for by ``actor``
    (the bot, or the supervisor who chose the flow). The actions the step queued
    are appended to ``requested`` when given (the answer, without reading it
    back)."""
    if flow is not None:
        start, steps = flow.start, flow.steps
    elif builtin is not None:
        start, steps = builtin
    else:
        raise ValueError("start_flow needs a flow or a built-in one")
    # Stored once, by its first step: an insert and no update.
    session = IvrSession(
        call=call, flow=flow, policy=policy, flow_start=start, flow_steps=steps
    )
    _step(call, session, flows.Start(now), now, actor, requested)
    return session


# --- moving sessions ------------------------------------------------------------------------
def handle_activity(
    call_id: int,
    *,
    state: str = "",
    state_changed: bool = False,
    tones: Sequence[str] = (),
    finished_actions: Iterable[Sequence[Any]] = (),
    terminated: bool = False,
    now: datetime | None = None,
) -> None:
    """Turn one call's activity into flow events, in a fixed order: established,
    finished actions, tones, the end. Does nothing for calls without a running session.
    Activity of the call held before it (``HeldActivity``) is handled first.
    """
    now = now or timezone.now()
    events = _events(state, state_changed, tones, finished_actions, terminated, now)
    if not events:
        return
    with transaction.atomic(), audit.written_last():
        call = Call.objects.select_for_update(no_key=True).filter(pk=call_id).first()
        session = _locked_session(call_id)
        if call is None or session is None:
            return
        if session.held:
            _handle_held(call, session, now)
        for event in events:
            _step(call, session, event, now)


def _events(
    state: str,
    state_changed: bool,
    tones: Sequence[str],
    finished_actions: Iterable[Sequence[Any]],
    terminated: bool,
    now: datetime,
) -> list[flows.Event]:
    events: list[flows.Event] = []
    if state_changed and state == CallState.ESTABLISHED:
        events.append(flows.Established(now))
    for action_id, _kind, status in finished_actions:
        events.append(flows.ActionFinished(int(action_id), str(status), now))
    if tones:
        events.append(flows.Tones(tuple(tones), now))
    if terminated:
        events.append(flows.Ended(now))
    return events


def activity_events(activity: Mapping[str, Any], now: datetime) -> list[flows.Event]:
    """The flow events of a ``CallActivity`` as a dict (a task's message, a held
    row), as ``handle_activity`` makes them."""
    return _events(
        str(activity.get("state", "")),
        bool(activity.get("state_changed")),
        tuple(activity.get("tones") or ()),
        [tuple(a) for a in activity.get("finished_actions") or ()],
        bool(activity.get("terminated")),
        now,
    )


def handle_held(call_id: int, now: datetime | None = None) -> int:
    """Handle the activity held for ``call_id`` (``HeldActivity``), oldest first,
    and delete it, in one transaction under the call's lock: however many sweeps
    and tasks run it, each held row moves the flow once. Returns how many rows
    were handled (rows of a call no longer in a flow are only deleted)."""
    now = now or timezone.now()
    with transaction.atomic(), audit.written_last():
        call = _locked_call(call_id)
        session = _locked_session(call_id)
        if call is None or session is None:
            forgotten, _ = HeldActivity.objects.filter(call_id=call_id).delete()
            if forgotten:
                logger.info(
                    "held IVR activity of call %s forgotten: no flow runs on it",
                    call_id,
                    extra={"call_id": call_id},
                )
            return 0
        return _handle_held(call, session, now)


def _handle_held(call: Call, session: IvrSession, now: datetime) -> int:
    """Step ``session`` (locked, with its call) through its call's held
    activity, oldest first, then delete it and clear the session's mark."""
    held = list(HeldActivity.objects.filter(call_id=call.pk).order_by("pk"))
    for row in held:
        for event in activity_events(row.activity, now):
            _step(call, session, event, now)
        logger.info(
            "held IVR activity of call %s handled (%s, held %.1f s)",
            call.pk,
            describe_activity(row.activity),
            (now - row.created_at).total_seconds(),
            extra={"call_id": call.pk},
        )
    if held:
        HeldActivity.objects.filter(pk__in=[row.pk for row in held]).delete()
    if session.held:
        session.held = False
        IvrSession.objects.filter(pk=session.pk).update(held=False)
    return len(held)


def describe_activity(activity: Mapping[str, Any]) -> str:
    """What a ``CallActivity`` dict holds, for the log: "tones 1 #, play_prompt
    12 completed"."""
    said = []
    if activity.get("state_changed") and activity.get("state") == CallState.ESTABLISHED:
        said.append("established")
    for action_id, kind, status in activity.get("finished_actions") or ():
        said.append(f"{kind} {action_id} {status}")
    if activity.get("tones"):
        said.append("tones " + " ".join(activity["tones"]))
    if activity.get("terminated"):
        said.append("ended")
    return ", ".join(said) or "nothing the flow acts on"


def _due_at(session: IvrSession) -> datetime | None:
    """When the session next needs a ``Tick``: its deadline, or the time its
    looped prompt, whose playback is over, may start again."""
    replay = session.replay_at if session.awaiting_action_id is None else None
    times = [t for t in (session.deadline, replay) if t is not None]
    return min(times) if times else None


def sweep_timeouts(now: datetime | None = None) -> int:
    """Send a ``Tick`` to every running session whose deadline passed (a collect
    step's timeout, the end of a supervisors step's wait) or whose looped prompt
    is due again (hold music whose playback ended early).

    Returns how many sessions moved. Safe to run concurrently: each session is
    rechecked under its lock, so a session another worker already moved is skipped.
    """
    now = now or timezone.now()
    due = list(
        IvrSession.objects.filter(status=IvrSession.Status.RUNNING)
        .filter(
            Q(deadline__lte=now)
            | Q(replay_at__lte=now, awaiting_action_id__isnull=True)
        )
        .values_list("call_id", flat=True)
    )
    moved = 0
    for call_id in due:
        with transaction.atomic(), audit.written_last():
            call = _locked_call(call_id)
            session = _locked_session(call_id)
            if call is None or session is None:
                continue
            if session.held:
                # What the caller did before the broker came back goes first:
                # a key pressed in time is not taken for a timeout.
                _handle_held(call, session, now)
            due_at = _due_at(session)
            if due_at is None or due_at > now:
                continue
            _step(call, session, flows.Tick(now), now)
            moved += 1
    return moved


def _locked_call(call_id: int) -> Call | None:
    """The call, locked (``FOR NO KEY UPDATE``) and loaded whole. Compiled once
    (``lockedrows``): every step of every call runs it."""
    return lockedrows.first(
        "ivr.call",
        lambda pk: Call.objects.select_for_update(no_key=True).filter(pk=pk),
        call_id,
    )


def _locked_session(call_id: int) -> IvrSession | None:
    """The call's running session, locked and loaded whole (``lockedrows``)."""
    return lockedrows.first(
        "ivr.session",
        lambda pk: IvrSession.objects.select_for_update(no_key=True).filter(
            call_id=pk, status=IvrSession.Status.RUNNING
        ),
        call_id,
    )


def _step(
    call: Call,
    session: IvrSession,
    event: flows.Event,
    now: datetime,
    actor: Actor = None,
    requested: list[Action] | None = None,
) -> None:
    """Advance ``session`` on ``event``, request the commands (as ``actor``: the bot,
    or the supervisor who answered the call into the flow), save the state; the
    actions queued are appended to ``requested`` when given."""
    if session.status != IvrSession.Status.RUNNING:
        return
    try:
        flow = session.flow_definition()
    except flows.FlowError as exc:
        # Flows are checked when saved; a stored snapshot that no longer parses
        # (the step format changed) ends the session instead of stalling the call.
        logger.error("IVR session %s has an invalid flow: %s", session.pk, exc)
        session.status = IvrSession.Status.FAILED
        session.outcome = f"invalid flow: {exc}"[:255]
        session.deadline = session.replay_at = None
        _save(session)
        return
    state, commands = flows.advance(flow, session.state(), event)
    state = _perform(call, flow, state, commands, now, actor, requested)
    session.store(state, now)
    _save(session)
    if state.finished and call.waiting_since is not None:
        # A flow that is over holds nobody for a person any more. A supervisors
        # step says so itself; the hold flow (answered to hold from the board)
        # has no queue step, so a caller hanging up on the music would otherwise
        # stay "waiting" on the board.
        set_waiting(call, False, actor=actor, taken=False)


def _save(session: IvrSession) -> None:
    """Insert a new session; write only the state of one that is stored (its flow
    snapshot, call and policy never change after the insert)."""
    if session.pk is None:
        session.save()
    else:
        session.save(update_fields=IvrSession.STATE_FIELDS)


def _perform(
    call: Call,
    flow: flows.Flow,
    state: flows.FlowState,
    commands: list[flows.Command],
    now: datetime,
    actor: Actor = None,
    requested: list[Action] | None = None,
) -> flows.FlowState:
    """Request each command through the service; a refusal becomes a ``Refused``
    event (which ends the session and, unless the refusal was for the hang-up,
    hangs up). ``set_waiting`` is no request: it marks the call waiting for a
    person, or no longer (nobody took it, so no ``take`` is audited). Each action
    queued is appended to ``requested`` when given."""
    for command in commands:
        if command.kind == "set_waiting":
            waiting = bool(command.params["waiting"])
            if waiting or call.waiting_since is not None:
                # A supervisors step's wait ends at the session's deadline.
                set_waiting(
                    call,
                    waiting,
                    actor=actor,
                    taken=False,
                    until=state.deadline if waiting else None,
                    then=str(command.params.get("then", "")),
                )
            continue
        try:
            params = _resolve(command, flow)
            action = request_action(
                command.kind, actor=actor, call=call, params=params, call_locked=True
            )
        except (ActionRefusedError, PromptNotFoundError) as exc:
            message = exc.message if isinstance(exc, ActionRefusedError) else str(exc)
            logger.warning(
                "IVR %s refused on call %s: %s",
                command.kind,
                call.pk,
                message,
                extra={"call_id": call.pk},
            )
            state, more = flows.advance(
                flow, state, flows.Refused(command.kind, message, now)
            )
            if not more:
                return state
            return _perform(call, flow, state, more, now, requested=requested)
        if requested is not None:
            requested.append(action)
        if command.wait:
            state = replace(state, awaiting=action.pk)
    return state


def _resolve(command: flows.Command, flow: flows.Flow) -> dict[str, Any]:
    """Service parameters for a command: prompt names become URIs, the operator an
    identity, and an answer prefetches the flow's prompts."""
    params = dict(command.params)
    if command.kind == "play_prompt":
        name = params.pop("prompt")
        return {"uri": prompt_uri(name), "name": name}
    if command.kind == "record_response" and "prompt" in params:
        params["prompt_uri"] = prompt_uri(params.pop("prompt"))
        return params
    if command.kind in ("transfer", "redirect", "invite"):
        params["target"] = resolve_target(params["target"])
        return params
    if command.kind == "answer":
        found = prompt_uris(s.prompt for s in flow.steps.values() if s.prompt)
        uris = [found[name] for name in sorted(found)]
        return {"prompt_uris": uris} if uris else {}
    return params


def resolve_target(target: str | Mapping[str, str]) -> dict[str, str]:
    """A flow's target in the service's TARGET shape; ``"operator"`` is the user
    named by ``IVR_OPERATOR_USER_ID``."""
    if target == flows.OPERATOR:
        return {
            "user_id": settings.IVR_OPERATOR_USER_ID,
            "display_name": settings.IVR_OPERATOR_DISPLAY_NAME,
        }
    if isinstance(target, str):
        raise ValueError(f"unknown target {target!r}")
    return dict(target)
