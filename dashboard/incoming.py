"""Requests about ringing calls that go beyond one ``request_action``: answering into
a chosen IVR flow (``callbot.ivr.supervisors``), and the choices the page offers
(flows, saved redirect targets). The consumer routes every action through
``request``; reads only, apart from what the services write.

With in-process tasks (the embedded default) a ringing call's answer, reject or
redirect is performed by the thread that asked for it right after its commit,
stored already claimed (``enqueue.performing_here``, as a worker's IVR task
does): the eager task it replaces ran in the same thread anyway, but first
claimed the action in a write transaction of its own and read it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

from callbot.calls import enqueue, services
from callbot.calls.access import Actor
from callbot.calls.kinds import RINGING_KINDS
from callbot.calls.models import Action, RedirectTarget
from callbot.calls.params import phone_refused
from callbot.calls.tasks import perform_kept
from callbot.ivr import supervisors


def request(
    kind: str,
    *,
    actor: Actor,
    call: int | None,
    participant_id: str,
    params: Mapping[str, Any],
    client_ip: str | None,
) -> list[Action]:
    """What a supervisor asked for: an answer naming a ``flow`` runs that IVR flow
    (whose first step answers; ``"hold"``: hold music until a person takes the
    call), ``take`` takes a held call, everything else is ``services.request``. Raises
    ``ActionRefusedError``, audited."""
    with _performing(kind):
        if kind == "take":
            return supervisors.take_call(call, actor=actor, client_ip=client_ip)
        if kind == Action.Kind.ANSWER and params.get("flow") not in (None, ""):
            return [
                supervisors.answer_into_flow(
                    call, params["flow"], actor=actor, client_ip=client_ip
                )
            ]
        return services.request(
            kind,
            actor=actor,
            call=call,
            participant_id=participant_id,
            params=params,
            client_ip=client_ip,
        )


def _performing(kind: str) -> AbstractContextManager[object]:
    """Where a decision on a ringing call is performed: here, after its commit,
    when tasks run in this thread anyway; else on a worker, as every action."""
    if kind in RINGING_KINDS and enqueue.eager():
        return enqueue.performing_here(partial(perform_kept, broker=False))
    return nullcontext()


def choices() -> dict[str, Any]:
    """What the ringing-call controls offer: IVR flows to answer into, the enabled
    saved redirect targets, and why a phone number cannot be reached (``""``
    when it can: an application instance is configured)."""
    return {
        "answer_flows": supervisors.answer_flows(),
        "redirect_targets": [
            t.shape() for t in RedirectTarget.objects.filter(enabled=True)
        ],
        "phone_refused": phone_refused(),
    }
