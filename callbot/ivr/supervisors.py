"""Ringing calls and the supervisors: answering a call into a chosen IVR flow from
the browser, and the hand-off queue a call policy can put a call in.

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
from django.utils import timezone

from callbot.calls import audit
from callbot.calls.access import ActionRefusedError, Actor, check_actor, locked_call
from callbot.calls.models import Action, Call
from callbot.calls.params import DECISION_KINDS, still_ringing
from callbot.calls.states import CallState
from callbot.ivr import runtime
from callbot.ivr.models import Handoff, IvrFlow

logger = logging.getLogger(__name__)


def answer_flows() -> list[dict[str, Any]]:
    """The flows a supervisor may answer a ringing call into, for the page."""
    return [{"id": f.pk, "name": f.name} for f in IvrFlow.objects.order_by("name")]


def answer_into_flow(
    call_id: int | None,
    flow_id: Any,
    *,
    actor: Actor,
    client_ip: str | None = None,
) -> Action:
    """Answer a ringing call into IVR flow ``flow_id``, as ``actor`` asked.

    In one transaction: check the actor, lock the call (it must still ring, inside
    Graph's answer window, with no other decision under way and no flow running),
    start an ``IvrSession`` whose first step requests the answer in the actor's
    name. Returns that answer Action. Raises ``ActionRefusedError`` (audited);
    nothing is stored then.
    """
    try:
        check_actor(actor, what="answer")
        flow = _flow(flow_id)
        with transaction.atomic():
            call = locked_call(
                call_id,
                states=(CallState.INCOMING,),
                verb="answer",
                what="answer",
            )
            still_ringing(call, "answer")
            if hasattr(call, "ivr"):
                raise ActionRefusedError(
                    "wrong_state", "This call already runs an IVR flow."
                )
            session = runtime.start_flow(call, flow, timezone.now(), actor=actor)
            answer = call.actions.filter(kind=Action.Kind.ANSWER).order_by("-pk")
            action = answer.first()
            if action is None or session.status != session.Status.RUNNING:
                # The flow could not answer (its prompts are gone): keep nothing.
                raise ActionRefusedError(
                    "invalid",
                    f"The flow {flow.name!r} could not start: "
                    f"{session.outcome or 'no answer was asked for'}.",
                )
    except ActionRefusedError as refused:
        audit.record_refusal(actor, Action.Kind.ANSWER, call_id, "", refused, client_ip)
        raise
    return action


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
                Handoff.objects.select_for_update(no_key=True)
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
