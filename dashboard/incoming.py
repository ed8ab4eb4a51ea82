"""Requests about ringing calls that go beyond one ``request_action``: answering into
a chosen IVR flow (``callbot.ivr.supervisors``), and the choices the page offers
(flows, saved redirect targets). The consumer routes every action through
``request``; reads only, apart from what the services write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callbot.calls import services
from callbot.calls.access import Actor
from callbot.calls.models import Action, RedirectTarget
from callbot.calls.params import phone_refused
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
