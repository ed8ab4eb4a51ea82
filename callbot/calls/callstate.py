"""Calls and operations: what a call or an operation notification changes.

A call notification moves the call's state along ``states.CALL_MOVES`` (a stale
state arriving late is ignored), fills in its descriptive properties whenever they
are sent, records tones once per ``sequenceId``, and settles the pending actions
whose outcome the new state is. An operation notification finishes the action it
reports on. Both work on the batch's working set of the call (``callwork.py``);
``ingest.py`` stores the notifications and saves the rows.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db.models import Q

from callbot.calls import dropped, kinds, lifecycle, live, lockedrows
from callbot.calls.callwork import CallWork
from callbot.calls.meetings import meeting_for_call
from callbot.calls.models import Action
from callbot.calls.rosters import apply_hold, end_roster
from callbot.calls.states import (
    ActionStatus,
    CallDirection,
    CallKind,
    CallState,
    can_move_call,
    parse_call_state,
)
from callbot.graph.notifications import Notification
from callbot.graph.resources import CallResource

logger = logging.getLogger(__name__)


def apply_call(item: CallWork, n: Notification, r: CallResource, now: datetime) -> None:
    """Apply a call notification (``r`` is its resource) to ``item``.

    The caller holds the call's row lock; pending actions this state change
    settles are locked and finished here, saved with the call by ingest.
    """
    call = item.call
    new_state = (
        CallState.TERMINATED
        if n.change_type == "deleted"
        else parse_call_state(r.state)
    )
    stale = (
        new_state is not None
        and new_state != call.state
        and item.state_seen
        and not can_move_call(call.state, new_state)
    )
    if stale:
        logger.info(
            "ignored stale call state %s (call is %s)",
            new_state,
            call.state,
            extra={"call_id": call.pk, "graph_call_id": call.graph_id},
        )
    # Descriptive properties are filled in whenever they are sent: they do not
    # go backwards the way state does.
    _apply_call_properties(item, r)
    if stale:
        return
    if new_state is not None:
        item.state_seen = True
    if new_state is not None and new_state != call.state:
        old_state = call.state
        item.set("state", new_state.value)
        settle_by_state(item, old_state, new_state, r, now)
    ended_now = False
    if new_state is not None:
        if new_state == CallState.ESTABLISHED and call.established_at is None:
            item.set("established_at", now, live.iso(now))
        if new_state == CallState.TERMINATED and call.terminated_at is None:
            item.set("terminated_at", now, live.iso(now))
            end_roster(item, now)
            ended_now = True
    if r.media_state_audio is not None:
        item.set("media_state_audio", r.media_state_audio[:16])
    if r.result_info is not None:
        item.set("result_code", r.result_info.code)
        item.set("result_subcode", r.result_info.subcode)
        item.set("result_message", r.result_info.message[:2000])
    if ended_now:
        # Once per call: only the move to terminated sets terminated_at.
        dropped.note_drop(call, now)
    tone = r.tone_info
    if tone is not None and (
        call.last_tone_sequence is None or tone.sequence_id > call.last_tone_sequence
    ):
        item.set("last_tone_sequence", tone.sequence_id)
        item.set("last_tone", tone.tone[:16])
        item.tones.append(tone_key(tone.tone))


_TONE_KEYS = {"star": "*", "pound": "#"}


def tone_key(tone: str) -> str:
    """The key a Graph tone name stands for: ``tone0`` → "0", ``tonePound`` → "#"."""
    name = tone.removeprefix("tone").lower()
    return _TONE_KEYS.get(name, name)


def settle_by_state(
    item: CallWork,
    old_state: str,
    new_state: CallState,
    r: CallResource,
    now: datetime,
    *,
    lost: str = "",
) -> None:
    """Complete or fail the pending actions whose outcome is this state change.

    Queued actions count too: the notification can beat the task recording that
    Graph accepted the request. ``lost``: the call was found gone rather than told
    to have ended; failures say so (``call_lost``) with this reason.
    """
    settled = [
        k
        for k in kinds.SETTLED_BY_CALL_KINDS
        if kinds.settled_status(k, new_state, old_state)
    ]
    if not settled:
        return
    # Compiled once per set of kinds (``lockedrows``): every answered call's
    # state changes ask it.
    pending = lockedrows.rows(
        "settle." + ",".join(settled),
        lambda call_id: Action.objects.select_for_update(no_key=True).filter(
            call_id=call_id,
            kind__in=settled,
            status__in=[ActionStatus.QUEUED, ActionStatus.SENT],
        ),
        item.call.pk,
    )
    info = r.result_info
    for action in pending:
        status = kinds.settled_status(action.kind, new_state, old_state)
        if status is None:
            continue
        failed_lost = lost and status == ActionStatus.FAILED
        if lifecycle.finish(
            action,
            status,
            now=now,
            result_code=info.code if info else None,
            result_subcode=info.subcode if info else None,
            message=(
                lost
                if failed_lost
                else (info.message if info and info.message else "")
                or settled_words(status, new_state)
            ),
            error_code="call_lost" if failed_lost else "",
        ):
            item.actions.append(action)
            item.mutations += 1


def settled_words(status: str, state: str) -> str:
    """What the call's state says of an action it settled, for an outcome whose
    notification gave no ``resultInfo`` message (an answer's ``established``
    never does: Graph answered the request 202 with no body, contract §6.4)."""
    if status == ActionStatus.COMPLETED:
        return "The call ended." if state == CallState.TERMINATED else "Established."
    if state == CallState.TERMINATED:
        return "The call ended before it was set up."
    # A transfer that fell back (contract §6.7).
    return "The call is established again: the transfer did not happen."


def _apply_call_properties(item: CallWork, r: CallResource) -> None:
    call = item.call
    if r.direction in (CallDirection.INCOMING, CallDirection.OUTGOING) and (
        call.direction == CallDirection.UNKNOWN
    ):
        item.set("direction", r.direction)
    for name, value, limit in (
        ("tenant_id", r.tenant_id, 64),
        ("callback_uri", r.callback_uri, None),
        ("call_chain_id", r.call_chain_id, 64),
        ("my_participant_id", r.my_participant_id, 64),
        ("subject", r.subject, 255),
        ("media_config_kind", r.media_config_kind, 16),
    ):
        if value:
            item.set(name, value[:limit])
    if r.source is not None:
        item.set("source", r.source)
        if r.source_identity is not None:
            item.set("source_display", _identity_label(r.source_identity)[:255])
            if r.source_identity.id:
                item.set("source_id", r.source_identity.id[:128])
    if r.targets is not None:
        item.set("targets", r.targets)
        if len(r.targets) > 1 and call.kind == CallKind.PEER_TO_PEER:
            item.set("kind", CallKind.GROUP.value)
    if r.requested_modalities is not None:
        item.set("requested_modalities", r.requested_modalities)
    if (
        r.call_options is not None
        and r.call_options.get("isDeltaRosterEnabled") is True
    ):
        item.set("delta_roster", True)
    if r.meeting_info:
        meeting = meeting_for_call(r)
        if meeting is not None:
            item.set("meeting_id", meeting.pk)
        item.set("kind", CallKind.MEETING.value)
        if not call.subject and meeting is not None and meeting.subject:
            item.set("subject", meeting.subject)
    elif r.chat_info and call.kind == CallKind.PEER_TO_PEER:
        # A chat thread without meeting coordinates: a peer-to-peer call escalated
        # to a group call (contract §7.11), not a meeting.
        item.set("kind", CallKind.GROUP.value)


def _identity_label(identity: Any) -> str:
    name: str = identity.display_name or identity.id
    return name


def apply_operation(item: CallWork, n: Notification, now: datetime) -> None:
    """Finish the action an operation notification reports on, found by the
    normalised operation id or its ``clientContext``; a late or unmatched one
    changes nothing. A finished recording is queued for fetching after commit."""
    op = n.operation
    if op is None:
        return
    action = operation_action(item, n)
    if action is None:
        logger.info(
            "operation notification matches no action",
            extra={
                "call_id": item.call.pk,
                "graph_call_id": item.call.graph_id,
                "operation": n.operation_key,
            },
        )
        return
    status = op.status if n.change_type != "deleted" or op.status else "completed"
    if status not in (ActionStatus.COMPLETED, ActionStatus.FAILED):
        return
    info = op.result_info
    if not lifecycle.finish(
        action,
        status,
        now=now,
        result_code=info.code if info else None,
        result_subcode=info.subcode if info else None,
        message=lifecycle.operation_words(status, info),
        operation_id=op.id or "",
    ):
        return  # already final: a redelivered or late operation notification
    if (
        status == ActionStatus.COMPLETED
        and op.recording_location
        and op.recording_access_token
    ):
        # The token is short-lived and never stored: it travels to the task only.
        item.recordings.append(
            (action.pk, op.recording_location, op.recording_access_token)
        )
    if status == ActionStatus.COMPLETED and action.kind in kinds.HOLD_KINDS:
        # The roster does not say who is on hold; the finished hold actions do.
        apply_hold(item, action, now)
    item.actions.append(action)
    item.mutations += 1


def operation_action(item: CallWork, n: Notification) -> Action | None:
    """The action an operation notification reports on, locked: by the normalised
    operation id, or by its ``clientContext`` while the action has no id yet."""
    op = n.operation
    if op is None:
        return None
    query = Q(operation_key=n.operation_key) if n.operation_key else Q(pk__in=[])
    if op.client_context:
        query |= Q(client_context=op.client_context, operation_key="")
    return (
        Action.objects.select_for_update(no_key=True)
        .filter(query, call=item.call)
        .order_by("-created_at")
        .first()
    )
