"""Builders for the notifications the engine sends (contract §7).

Each returns a ``delivery.Notification`` whose rendered ``commsNotification`` carries
both the legacy ``resource`` (``/app/calls/...``) and ``resourceUrl``
(``/communications/calls/...``), the call's ``callbackUri`` and a ``resourceData``
snapshot taken now (rosters in full mode are the exception: see ``roster.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callbot.simulator.delivery import Notification
from callbot.simulator.model import Call, Operation


def envelope(call: Call, suffix: str, change_type: str, data: Any) -> dict[str, Any]:
    """One ``commsNotification`` about ``/calls/{id}{suffix}``."""
    return {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": change_type,
        "resource": f"/app/calls/{call.id}{suffix}",
        "resourceUrl": f"/communications/calls/{call.id}{suffix}",
        "callbackUri": call.callback_uri,
        "resourceData": data,
    }


def _fixed(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: payload


def call_created(call: Call) -> Notification:
    """The ``created`` notification announcing an incoming call (contract §7.4)."""
    data = call.to_json()
    data.pop("@odata.context", None)
    data["@odata.id"] = call.path()
    return Notification(
        call.id,
        call.conversation.chain_id,
        call.callback_uri,
        _fixed(envelope(call, "", "created", data)),
        kind="call",
        tag=call.state,
    )


def call_updated(call: Call, **extra: Any) -> Notification:
    """An ``updated`` on the call carrying its current ``state`` plus ``extra``."""
    data: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.call",
        "@odata.id": call.path(),
        "id": call.id,
        "state": call.state,
    }
    data.update(extra)
    return Notification(
        call.id,
        call.conversation.chain_id,
        call.callback_uri,
        _fixed(envelope(call, "", "updated", data)),
        kind="call",
        tag=call.state,
    )


def call_deleted(call: Call, bare: bool = False) -> Notification:
    """The final ``deleted`` on the call (contract §3.2, §7.9).

    ``bare`` reproduces the documented reject example: only ``@odata.type`` and
    ``@odata.id``, no ``state`` and no ``resultInfo``.
    """
    data: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.call",
        "@odata.id": call.path(),
    }
    if not bare:
        data.update(
            {"id": call.id, "state": "terminated", "resultInfo": call.result_info}
        )
    return Notification(
        call.id,
        call.conversation.chain_id,
        call.callback_uri,
        _fixed(envelope(call, "", "deleted", data)),
        kind="call",
        tag="terminated",
    )


def operation_finished(call: Call, operation: Operation) -> Notification:
    """The ``deleted`` notification that reports an operation's final state (§7.8)."""
    data = operation.to_json()
    data["@odata.id"] = f"{call.path()}/operations/{operation.id}"
    return Notification(
        call.id,
        call.conversation.chain_id,
        call.callback_uri,
        _fixed(envelope(call, f"/operations/{operation.id}", "deleted", data)),
        kind="operation",
    )
