"""The live protocol's server side: group names, payload shapes, publish-after-commit.

Ingest and services publish here; the dashboard's consumers subscribe to the groups
and read the shapes, so ingest never imports the dashboard. Payloads hold JSON types
only (string ids, ISO-8601 times): the Redis layer serialises with msgpack and would
refuse a ``datetime`` that the in-memory layer lets through.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction

import redis.exceptions
from channels.layers import get_channel_layer

from callbot.calls import pushloop
from callbot.calls.models import Action, Participant
from callbot.observability import hops, metrics

logger = logging.getLogger(__name__)

# What channels_redis raises when Redis cannot be reached (a restart, a network
# cut): a known condition said in one line, not a traceback per publish.
LAYER_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _failed(what: str, error: Exception) -> None:
    """Log a failed publish: the data is committed, and a page that misses a
    push sees the version gap and asks for a snapshot, so a push never fails
    its caller."""
    if isinstance(error, LAYER_UNREACHABLE):
        logger.warning("%s failed: the channel layer is unreachable (%s)", what, error)
    else:
        logger.error("%s failed", what, exc_info=error)


LIVE_CALLS_GROUP = "calls.live"
CALL_DELTA_TYPE = "call.delta"
CALLS_DELTA_TYPE = "calls.delta"
# Something a person should know about now (the bot dropped from a call), sent to
# the live-calls group; handled by the consumer's ``calls_notice``.
CALLS_NOTICE_TYPE = "calls.notice"


def call_group(call_id: int) -> str:
    """The channel-layer group carrying one call's deltas."""
    return f"call.{call_id}"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class ParticipantShape(TypedDict):
    id: str
    name: str
    kind: str
    identity_id: str
    role: str
    is_bot: bool
    is_muted: bool
    is_in_lobby: bool
    is_sharing_screen: bool
    on_hold: bool
    joined_at: str | None
    left_at: str | None


def participant_shape(p: Participant) -> ParticipantShape:
    return {
        "id": p.graph_id,
        "name": p.display_name or p.identity_id or p.graph_id,
        "kind": p.identity_kind,
        "identity_id": p.identity_id,
        "role": p.role,
        "is_bot": p.is_bot,
        "is_muted": p.is_muted,
        "is_in_lobby": p.is_in_lobby,
        "is_sharing_screen": p.is_sharing_screen,
        "on_hold": p.on_hold,
        "joined_at": iso(p.joined_at),
        "left_at": iso(p.left_at),
    }


@dataclass
class CallDelta:
    """What one transaction changed on one call: the payload browsers apply."""

    call_id: int
    base_version: int
    version: int
    call: dict[str, Any] = field(default_factory=dict)
    participants: list[ParticipantShape] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    # The board row's changed fields (always with id and version); whole when new.
    board: dict[str, Any] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (self.call or self.participants or self.left or self.actions)

    def message(self) -> dict[str, Any]:
        return {
            "type": CALL_DELTA_TYPE,
            "call_id": self.call_id,
            "base_version": self.base_version,
            "version": self.version,
            "call": self.call,
            "participants": list(self.participants),
            "left": self.left,
            "actions": self.actions,
        }


def action_shape(a: Action) -> dict[str, Any]:
    """An action as browsers see it; ``message`` explains a failure in words."""
    return {
        "id": a.pk,
        "kind": a.kind,
        "call_id": a.call_id,
        "status": a.status,
        # Whether a worker has taken it (the call page says when none has).
        "picked_up": a.attempts > 0,
        "target": a.target,
        "participant_id": str((a.parameters or {}).get("participant_id", "")),
        "result_code": a.result_code,
        "result_subcode": a.result_subcode,
        "result_message": a.result_message,
        "error_code": a.error_code,
        "message": action_message(a),
        # The bot's own (IVR, call policy, beat): never shown as a person's act.
        "by_bot": a.requested_by_id is None,
        "created_at": iso(a.created_at),
        "completed_at": iso(a.completed_at),
    }


# Graph's errors and result codes, in a supervisor's words (contract §11).
_ERROR_WORDS = {
    "graph_400": "Teams refused the request as malformed",
    "graph_401": "Callbot could not sign in to Microsoft Graph",
    "graph_403": "Callbot's app registration lacks the permission for this",
    "graph_404": "Teams no longer knows this call or participant",
    "graph_409": "The call was not in a state that allows this",
    "graph_429": "Microsoft Graph kept throttling the request",
    "graph_5xx": "Microsoft Graph was unavailable",
    "transport": "Callbot could not reach Microsoft Graph",
}
_RESULT_WORDS = {
    (400, 8508): "It was cancelled before it finished",
    (408, 1106): "Nobody answered in time",
    (480, 10076): "The person could not be reached",
    (403, 7504): "The bot lacks permission for group calls",
    (500, 7000): "The transfer target did not take the call",
    (500, 7700): "The consultative transfer failed",
    (480, 10037): "Teams found no device to ring for that person",
    (480, 10134): "Teams could not route the call",
    (480, 10199): "That person does not take private calls",
    (408, 10057): "The person's devices did not answer",
}
# When the subcode is not one of the above: the code alone.
_CODE_WORDS = {
    403: "Teams refused it: a permission or policy is missing",
    404: "Teams does not know the call or person it names",
    408: "Teams timed out waiting",
    480: "The person could not be reached",
    500: "Teams could not carry it out",
}


def action_message(a: Action) -> str:
    """One sentence on how an action ended, or "" while it is pending or succeeded."""
    if a.status != "failed":
        return ""
    words = (
        _ERROR_WORDS.get(a.error_code)
        or _RESULT_WORDS.get((a.result_code or 0, a.result_subcode or 0))
        or _CODE_WORDS.get(a.result_code or 0)
    )
    detail = a.result_message.strip()
    if words and detail:
        return f"{words}: {detail}"
    return words or detail or "Teams reported a failure without a reason."


def _checked(message: dict[str, Any]) -> dict[str, Any]:
    # The in-memory layer lets non-JSON values through that Redis would refuse;
    # under test every payload is round-tripped so such a bug fails loudly.
    if getattr(settings, "LIVE_PAYLOAD_JSON_CHECK", False):
        return dict(json.loads(json.dumps(message)))
    return message


def publish_deltas(deltas: list[CallDelta]) -> None:
    """Send call deltas and board-row changes to their groups. Call after commit.

    No queries here: everything was computed in the transaction, so the webhook's
    commit hook costs only the channel-layer sends.

    The board's rows go first: a ringing call's row is what a supervisor waits
    on, and each send is a round trip to Redis (a call's own group, which few
    or no pages watch, cost the ring one before its row). Each group still gets
    its messages in version order; the board and a call page are separate
    stores in the browser, each checking its own versions.
    """
    layer = get_channel_layer()
    if layer is None or not deltas:
        return
    messages: list[tuple[str, dict[str, Any]]] = [
        (LIVE_CALLS_GROUP, _checked({"type": CALLS_DELTA_TYPE, "call": d.board}))
        for d in deltas
        if d.board
    ]
    boards = len(messages)
    messages.extend((call_group(d.call_id), _checked(d.message())) for d in deltas)
    metrics.deltas_pushed(len(deltas), boards)
    keys = hops.applying.get() if hops.ENABLED else ()
    if keys:
        hops.mark("publish", keys)
        if len(keys) == 1:  # the consumers know the row's id, not the Graph id
            hops.mark("alias", (f"{d.call_id}={keys[0]}" for d in deltas))
    try:
        pushloop.run(_send_all, layer, messages)
        hops.mark("published", keys)
    except Exception as error:
        _failed(f"publishing {len(deltas)} call deltas", error)


def publish_board(message: dict[str, Any]) -> None:
    """Send one message to the board's group (alerts, KPIs). Call after commit;
    a failed push is logged, never raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        pushloop.run(_send_all, layer, [(LIVE_CALLS_GROUP, _checked(message))])
    except Exception as error:
        _failed(f"publishing a {message.get('type')} to the board", error)


def publish_calls(messages: dict[int, dict[str, Any]]) -> None:
    """Send one message to each call's group (its alerts). Call after commit; a
    failed push is logged, never raised."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    try:
        pushloop.run(
            _send_all,
            layer,
            [(call_group(i), _checked(m)) for i, m in messages.items()],
        )
    except Exception as error:
        _failed(f"publishing to {len(messages)} call pages", error)


async def _send_all(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


def publish_notice(notice: dict[str, Any]) -> None:
    """Send one notice to the live-calls group now. Call after commit."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = _checked({"type": CALLS_NOTICE_TYPE, "notice": notice})
    try:
        pushloop.run(layer.group_send, LIVE_CALLS_GROUP, message)
    except Exception as error:
        # Recorded in the audit trail already; a missed push must not fail ingest.
        _failed(f"publishing a {notice.get('kind')} notice", error)


def publish_notice_on_commit(notice: dict[str, Any]) -> None:
    """Register ``notice`` to be published once the current transaction commits."""
    transaction.on_commit(lambda: publish_notice(notice))


def publish_on_commit(deltas: list[CallDelta]) -> None:
    """Register the deltas to be published once the current transaction commits."""
    deltas = [d for d in deltas if not d.is_empty]
    if deltas:
        transaction.on_commit(lambda: publish_deltas(deltas))
