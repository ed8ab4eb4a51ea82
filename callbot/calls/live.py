"""The live protocol's server side: group names, payload shapes, publish-after-commit.

Ingest and services publish here; the dashboard's consumers subscribe to the groups
and read the shapes, so ingest never imports the dashboard. Payloads hold JSON types
only (string ids, ISO-8601 times): the Redis layer serialises with msgpack and would
refuse a ``datetime`` that the in-memory layer lets through.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from callbot.calls.models import Action, Call, Participant

logger = logging.getLogger(__name__)

LIVE_CALLS_GROUP = "calls.live"
CALL_DELTA_TYPE = "call.delta"
CALLS_DELTA_TYPE = "calls.delta"


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


class CallSummaryShape(TypedDict):
    id: int
    graph_id: str
    kind: str
    direction: str
    state: str
    subject: str
    caller: str
    meeting_id: int | None
    created_at: str | None
    established_at: str | None
    terminated_at: str | None
    participant_count: int
    muted_count: int
    sharing: list[str]
    pending_actions: int
    bot_muted: bool
    last_tone: str
    result: str
    version: int


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


def call_summaries(calls: Iterable[Call]) -> list[CallSummaryShape]:
    """Board rows for the given calls, with roster and action counts in two queries."""
    calls = list(calls)
    ids = [c.pk for c in calls]
    present = Q(participants__left_at__isnull=True)
    counts = {
        row["id"]: row
        for row in Call.objects.filter(pk__in=ids)
        .values("id")
        .annotate(
            participant_count=Count(
                "participants", filter=present & Q(participants__is_bot=False)
            ),
            muted_count=Count(
                "participants",
                filter=present
                & Q(participants__is_bot=False, participants__is_muted=True),
            ),
            bot_muted=Count(
                "participants",
                filter=present
                & Q(participants__is_bot=True, participants__is_muted=True),
            ),
        )
    }
    sharing: dict[int, list[str]] = {}
    for call_id, name in Participant.objects.filter(
        call_id__in=ids, left_at__isnull=True, is_sharing_screen=True
    ).values_list("call_id", "display_name"):
        sharing.setdefault(call_id, []).append(name)
    pending = dict(
        Action.objects.filter(call_id__in=ids, status__in=["queued", "sent"])
        .values("call_id")
        .annotate(n=Count("id"))
        .values_list("call_id", "n")
    )
    out: list[CallSummaryShape] = []
    for c in calls:
        row = counts.get(c.pk, {})
        result = ""
        if c.result_code is not None:
            result = (
                f"{c.result_code}/{c.result_subcode or 0} {c.result_message}".strip()
            )
        out.append(
            {
                "id": c.pk,
                "graph_id": c.graph_id,
                "kind": c.kind,
                "direction": c.direction,
                "state": c.state,
                "subject": c.subject,
                "caller": c.source_display,
                "meeting_id": c.meeting_id,
                "created_at": iso(c.created_at),
                "established_at": iso(c.established_at),
                "terminated_at": iso(c.terminated_at),
                "participant_count": int(row.get("participant_count", 0)),
                "muted_count": int(row.get("muted_count", 0)),
                "sharing": sharing.get(c.pk, []),
                "pending_actions": int(pending.get(c.pk, 0)),
                "bot_muted": bool(row.get("bot_muted", 0)),
                "last_tone": c.last_tone,
                "result": result,
                "version": c.version,
            }
        )
    return out


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


def _checked(message: dict[str, Any]) -> dict[str, Any]:
    # The in-memory layer lets non-JSON values through that Redis would refuse;
    # under test every payload is round-tripped so such a bug fails loudly.
    if getattr(settings, "LIVE_PAYLOAD_JSON_CHECK", False):
        return dict(json.loads(json.dumps(message)))
    return message


def publish_deltas(deltas: list[CallDelta]) -> None:
    """Send call deltas and fresh board rows to their groups. Call after commit."""
    if not deltas:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        summaries = call_summaries(
            Call.objects.filter(pk__in=[d.call_id for d in deltas])
        )
        by_id = {s["id"]: s for s in summaries}
        messages: list[tuple[str, dict[str, Any]]] = []
        for delta in deltas:
            messages.append((call_group(delta.call_id), _checked(delta.message())))
            summary = by_id.get(delta.call_id)
            if summary is not None:
                board = {"type": CALLS_DELTA_TYPE, "call": dict(summary)}
                messages.append((LIVE_CALLS_GROUP, _checked(board)))
        async_to_sync(_send_all)(layer, messages)
    except Exception:
        # The data is committed; a browser that misses a delta sees the version gap
        # and asks for a snapshot. Never fail the caller over a live push.
        logger.exception("publishing %d call deltas failed", len(deltas))


async def _send_all(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


def publish_on_commit(deltas: list[CallDelta]) -> None:
    """Register the deltas to be published once the current transaction commits."""
    deltas = [d for d in deltas if not d.is_empty]
    if deltas:
        transaction.on_commit(lambda: publish_deltas(deltas))
