"""Ringing calls and the supervisors: answering a call into a chosen IVR flow (or
holding it with music until a person takes it) from the browser, taking a held
call, and the hand-off queue a call policy can put a call in.

A hand-off (``Handoff``) lets a call ring on the supervisors' board for its
policy's ``max_wait_seconds``; ``sweep_handoffs`` (beat, every second, also on the
embedded default's in-process worker) then applies the policy's fallback unless
somebody decided the call first. Acts only through ``callbot.calls.services`` and
``runtime``; never calls Graph.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from callbot.calls import audit, kinds, services
from callbot.calls.access import ActionRefusedError, Actor, check_actor, locked_call
from callbot.calls.deciding import DECISION_KINDS, undecided
from callbot.calls.models import Action, Call
from callbot.calls.states import CallState
from callbot.ivr import runtime
from callbot.ivr.models import Handoff, IvrFlow, IvrSession
from callbot.ivr.prompts import HOLD_MUSIC

logger = logging.getLogger(__name__)


def answer_flows() -> list[dict[str, Any]]:
    """The flows a supervisor may answer a ringing call into, for the page."""
    return [{"id": f.pk, "name": f.name} for f in IvrFlow.objects.order_by("name")]


# Answering "to hold": Callbot's own flow, the hold music again and again until a
# person takes the call (``take_call``) or it ends.
HOLD = "hold"
HOLD_FLOW: tuple[str, list[dict[str, Any]]] = (
    HOLD,
    [{"id": HOLD, "type": "play", "prompt": HOLD_MUSIC, "next": HOLD}],
)


def answer_into_flow(
    call_id: int | None,
    flow_id: Any,
    *,
    actor: Actor,
    client_ip: str | None = None,
) -> Action:
    """Answer a ringing call into IVR flow ``flow_id`` (or, for ``"hold"``, hold it
    with music until a person takes it), as ``actor`` asked.

    In one transaction: check the actor, lock the call (it must still ring, inside
    Graph's answer window, with no other decision under way and no flow running),
    start an ``IvrSession`` whose first step requests the answer in the actor's
    name; for hold, mark the call waiting for a person (``services.set_waiting``).
    Returns that answer Action. Raises ``ActionRefusedError`` (audited); nothing is
    stored then.
    """
    try:
        check_actor(actor, what="answer")
        hold = flow_id == HOLD
        flow = None if hold else _flow(flow_id)
        with transaction.atomic():
            call = locked_call(
                call_id,
                states=(CallState.INCOMING,),
                verb="answer",
                what="answer",
            )
            requested: list[Action] = []
            with undecided(call, "answer"):
                if hasattr(call, "ivr"):
                    raise ActionRefusedError(
                        "wrong_state", "This call already runs an IVR flow."
                    )
                session = runtime.start_flow(
                    call,
                    flow,
                    timezone.now(),
                    actor=actor,
                    builtin=HOLD_FLOW if hold else None,
                    requested=requested,
                )
            answers = [a for a in requested if a.kind == Action.Kind.ANSWER]
            action = answers[-1] if answers else None
            if action is None or session.status != session.Status.RUNNING:
                # The flow could not answer (its prompts are gone): keep nothing.
                name = flow.name if flow is not None else "hold music"
                raise ActionRefusedError(
                    "invalid",
                    f"{name!r} could not start: "
                    f"{session.outcome or 'no answer was asked for'}.",
                )
            if hold:
                services.set_waiting(call, True, actor=actor, client_ip=client_ip)
    except ActionRefusedError as refused:
        audit.record_refusal(actor, Action.Kind.ANSWER, call_id, "", refused, client_ip)
        raise
    return action


def take_call(
    call_id: int | None, *, actor: Actor, client_ip: str | None = None
) -> list[Action]:
    """A person takes a call held with music for them (answered "to hold", or
    queued by a flow's supervisors step): the flow ends, the music
    stops (``cancel_media_processing``, asked for in their name), and the call is no
    longer waiting. They then talk through Teams (transfer or invite themselves).

    In one transaction, under the call's row lock and then its session's. Returns
    the Actions queued. Raises ``ActionRefusedError`` (audited): the call is not
    connected, or nobody is waiting on it (someone took it first).
    """
    try:
        check_actor(actor, what="take a call")
        with transaction.atomic():
            call = locked_call(
                call_id,
                states=kinds.KINDS["take"].states or (),
                verb="take",
                what="take the call",
            )
            if call.waiting_since is None:
                raise ActionRefusedError(
                    "wrong_state",
                    "Nobody is waiting on this call; someone may have taken it.",
                )
            # Held by the "hold" answer, or queued by a flow's supervisors step.
            session = (
                IvrSession.objects.select_for_update(no_key=True)
                .filter(call=call, status=IvrSession.Status.RUNNING)
                .filter(Q(flow_start=HOLD) | Q(phase="queued"))
                .first()
            )
            queued: list[Action] = []
            if session is not None:
                session.status = IvrSession.Status.COMPLETED
                session.outcome = f"taken by {_name(actor)}"
                session.deadline = session.replay_at = None
                session.awaiting_action_id = None
                session.save()
                queued.append(
                    services.request_action(
                        Action.Kind.CANCEL_MEDIA_PROCESSING,
                        actor=actor,
                        call=call,
                        client_ip=client_ip,
                    )
                )
            services.set_waiting(call, False, actor=actor, client_ip=client_ip)
    except ActionRefusedError as refused:
        audit.record_refusal(actor, "take", call_id, "", refused, client_ip)
        raise
    return queued


def _name(actor: Actor) -> str:
    return actor.get_username() if actor is not None else "callbot"


def _flow(flow_id: Any) -> IvrFlow:
    if isinstance(flow_id, str) and flow_id.isdecimal():
        flow_id = int(flow_id)
    if not isinstance(flow_id, int) or isinstance(flow_id, bool):
        raise ActionRefusedError("invalid", "An IVR flow is named by its number.")
    flow = IvrFlow.objects.filter(pk=flow_id).first()
    if flow is None:
        raise ActionRefusedError(
            "invalid", f"There is no IVR flow {flow_id}; reload the page."
        )
    return flow


def sweep_handoffs(now: datetime | None = None) -> int:
    """Close every waiting hand-off whose wait is over: the fallback when the call
    still rings undecided, else just the record of what happened.

    1. Read the due hand-offs (``ivr_handoff_due_idx``).
    2. For each, lock the call, then the hand-off (the order ingest and services
       use), and recheck it is still waiting: another worker may have won.
    3. Undecided and ringing: ``runtime.decide`` with the policy's fallback.
    Returns how many hand-offs fell back to their policy.
    """
    now = now or timezone.now()
    due = list(
        Handoff.objects.filter(
            status=Handoff.Status.WAITING, wait_until__lte=now
        ).values_list("call_id", flat=True)
    )
    fell_back = 0
    for call_id in due:
        with transaction.atomic():
            call = (
                Call.objects.select_for_update(no_key=True).filter(pk=call_id).first()
            )
            handoff = (
                # Only the hand-off's row: its policy's flow is a nullable join,
                # which PostgreSQL cannot lock.
                Handoff.objects.select_for_update(no_key=True, of=("self",))
                .select_related("policy", "policy__flow")
                .filter(call_id=call_id, status=Handoff.Status.WAITING)
                .first()
            )
            if call is None or handoff is None or handoff.wait_until > now:
                continue
            if call.state != CallState.INCOMING:
                handoff.status = Handoff.Status.ENDED
                handoff.outcome = f"call {call.get_state_display().lower()}"
            elif call.actions.filter(kind__in=DECISION_KINDS).exists() or hasattr(
                call, "ivr"
            ):
                handoff.status = Handoff.Status.DECIDED
                handoff.outcome = "decided before the wait was over"
            elif handoff.policy is None:
                handoff.status = Handoff.Status.ENDED
                handoff.outcome = "its policy was deleted; the call rings on"
                services.set_wait_limit(call, None)
            else:
                handoff.status = Handoff.Status.FELL_BACK
                handoff.outcome = runtime.decide(call, handoff.policy, now)[:255]
                fell_back += 1
                logger.info(
                    "hand-off of call %s fell back: %s",
                    call.pk,
                    handoff.outcome,
                    extra={"call_id": call.pk},
                )
            handoff.save(update_fields=["status", "outcome", "updated_at"])
    return fell_back
