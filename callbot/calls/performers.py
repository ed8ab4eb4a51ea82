"""One performer per action kind: the Graph request that carries it out.

A performer takes a claimed Action, sends its request through the Graph client
with the action's own ``client-request-id``, and records what Graph answered
through ``lifecycle``: ``sent`` when the outcome comes later (by an operation
notification or by the call's state), the final outcome when Graph gave it.
Graph errors propagate to ``perform.perform``, which decides on retries.

The table ``PERFORMERS`` must cover every Action kind in ``kinds.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from callbot.calls import kinds, lifecycle
from callbot.calls.meetings import store_online_meeting
from callbot.calls.models import Action, Call, Meeting
from callbot.calls.states import ActionStatus, CallKind
from callbot.graph.bodies import CallOptions, ChatInfo, MediaInfo, OrganizerMeetingInfo
from callbot.graph.client import GraphClient
from callbot.graph.resources import (
    CallResource,
    Identity,
    OperationResource,
    normalise_id,
)

K = Action.Kind
Performer = Callable[[GraphClient, Action], None]


def callback_uri() -> str:
    """Where Graph should send this bot's notifications."""
    return f"{settings.BOT_PUBLIC_URL.rstrip('/')}/api/calling/callback"


def target_identity(target: dict[str, str]) -> Identity:
    """The Graph identity for a stored target (``params.clean_target``)."""
    if target.get("user_id"):
        return Identity(
            kind="user",
            id=target["user_id"],
            display_name=target.get("display_name", ""),
            tenant_id=settings.GRAPH_TENANT_ID,
        )
    return Identity(
        kind="phone",
        id=target["phone"],
        display_name=target.get("display_name", ""),
        tenant_id="",
    )


def _call_id(action: Action) -> str:
    if action.call is None:
        raise ValueError("this action needs a call")
    return action.call.graph_id


def _record(action: Action, op: OperationResource) -> None:
    """Record an operation answer: final now, or ``sent`` until its notification."""
    status = (op.status or "").lower()
    info = op.result_info
    if status in (ActionStatus.COMPLETED, ActionStatus.FAILED):
        lifecycle.record_outcome(
            action.pk,
            status,
            result_code=info.code if info else None,
            result_subcode=info.subcode if info else None,
            message=lifecycle.operation_words(status, info),
            operation_id=op.id or "",
        )
    else:
        lifecycle.record_sent(action, operation_id=op.id or "")


def _accepted(action: Action) -> None:
    """Graph answered 202/204 and nothing more will say how it went."""
    lifecycle.record_outcome(
        action.pk, ActionStatus.COMPLETED, result_code=202, message="Accepted."
    )


def _call_options(call: Call | None = None) -> CallOptions | None:
    """Delta rosters (``GRAPH_DELTA_ROSTER``), not on peer-to-peer (escalation)."""
    delta = settings.GRAPH_DELTA_ROSTER and not (
        call and call.kind == CallKind.PEER_TO_PEER
    )
    return CallOptions(is_delta_roster_enabled=True) if delta else None


def _answer(client: GraphClient, a: Action) -> None:
    prompts = [MediaInfo(u) for u in a.parameters.get("prompt_uris", [])]
    client.answer(
        _call_id(a),
        callback_uri=callback_uri(),
        prompts_to_prefetch=prompts,
        call_options=_call_options(a.call),
        client_request_id=str(a.client_request_id),
    )
    lifecycle.record_sent(a)


def _reject(client: GraphClient, a: Action) -> None:
    client.reject(
        _call_id(a),
        a.parameters.get("reason", "none"),
        client_request_id=str(a.client_request_id),
    )
    lifecycle.record_sent(a)


def _redirect(client: GraphClient, a: Action) -> None:
    client.redirect(
        _call_id(a),
        [target_identity(a.parameters["target"])],
        callback_uri=callback_uri(),
        client_request_id=str(a.client_request_id),
    )
    lifecycle.record_sent(a)


def application_instance() -> Identity | None:
    """The bot's application instance, the ``source`` Graph requires for calls to
    phone numbers (contract §6.2); None when none is configured."""
    if not settings.GRAPH_APPLICATION_INSTANCE_ID:
        return None
    return Identity(
        kind="application_instance",
        id=settings.GRAPH_APPLICATION_INSTANCE_ID,
        display_name=settings.BOT_DISPLAY_NAME,
        tenant_id=settings.GRAPH_TENANT_ID,
    )


def _transferee(stored: dict[str, str] | None) -> Identity | None:
    """The participant moved out of a group call (``params.transfer``)."""
    if not stored:
        return None
    return Identity(
        kind=stored.get("kind") or "unknown",
        id=stored.get("id", ""),
        display_name=stored.get("display_name", ""),
        tenant_id="",
    )


def _transfer(client: GraphClient, a: Action) -> None:
    """Blind, or consultative with ``replacesCallId`` (the bot's call with the
    target); out of a group call with the ``transferee`` (contract §6.7)."""
    transferee = a.parameters.get("transferee")
    client.transfer(
        _call_id(a),
        target_identity(a.parameters["target"]),
        replaces_call_id=a.parameters.get("replaces_call_id"),
        transferee=_transferee(transferee),
        transferee_participant_id=(transferee or {}).get("participant_id"),
        client_context=a.client_context,
        client_request_id=str(a.client_request_id),
    )
    lifecycle.record_sent(a)


def _hang_up(client: GraphClient, a: Action) -> None:
    client.delete_call(_call_id(a), client_request_id=str(a.client_request_id))
    lifecycle.record_sent(a)


def _created(a: Action, resource: CallResource, **fields: Any) -> None:
    call = lifecycle.store_created_call(resource, **fields)
    lifecycle.record_sent(a.pk, call=call)


# The kinds whose request makes a new call, which the action is then linked to.
CALL_CREATING_KINDS = frozenset({K.PLACE_CALL, K.PLACE_GROUP_CALL, K.JOIN_MEETING})


def _placed_fields(a: Action) -> dict[str, Any]:
    """What only a place action knows about its call (Graph's notifications of an
    outgoing call carry little more than its state)."""
    if a.kind == K.PLACE_CALL:
        return {"kind": "peer_to_peer", "targets": [a.parameters["target"]]}
    return {
        "kind": "group",
        "targets": a.parameters["targets"],
        "subject": a.parameters.get("subject", ""),
    }


def link_placed_call(a: Action, resource: CallResource) -> bool:
    """Link a place action to a call an earlier attempt of it made (``resource``,
    as Graph shows it now), as that attempt would have had it not died. False if
    another action that makes calls was linked to that call first.

    The call's row lock is held from the check to the link, so two attempts that
    found the same call cannot both take it.
    """
    if not resource.id:
        return False
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(no_key=True)
            .filter(graph_key=normalise_id(resource.id)[:64])
            .first()
        )
        if call is None:
            return False
        if call.actions.filter(kind__in=CALL_CREATING_KINDS).exists():
            return False
        _created(a, resource, **_placed_fields(a))
    return True


def _place_call(client: GraphClient, a: Action) -> None:
    target = a.parameters["target"]
    resource = client.place_peer_to_peer_call(
        target_identity(target),
        callback_uri=callback_uri(),
        tenant_id=settings.GRAPH_TENANT_ID,
        source=application_instance() if target.get("phone") else None,
        client_request_id=str(a.client_request_id),
    )
    _created(a, resource, **_placed_fields(a))


def _place_group_call(client: GraphClient, a: Action) -> None:
    targets = a.parameters["targets"]
    resource = client.place_group_call(
        [target_identity(t) for t in targets],
        a.parameters.get("subject") or None,
        callback_uri=callback_uri(),
        tenant_id=settings.GRAPH_TENANT_ID,
        call_options=_call_options(),
        client_request_id=str(a.client_request_id),
    )
    _created(a, resource, **_placed_fields(a))


def _join_meeting(client: GraphClient, a: Action) -> None:
    meeting = Meeting.objects.get(pk=a.parameters["meeting_id"])
    tenant = meeting.tenant_id or settings.GRAPH_TENANT_ID
    crid = str(a.client_request_id)
    if meeting.can_join_by_coordinates:
        organizer = Identity(
            kind="user", id=meeting.organizer_id, display_name="", tenant_id=tenant
        )
        resource = client.join_meeting(
            ChatInfo(
                meeting.thread_id,
                meeting.message_id or "0",
                meeting.reply_chain_message_id or None,
            ),
            OrganizerMeetingInfo(organizer),
            tenant,
            callback_uri=callback_uri(),
            call_options=_call_options(),
            client_request_id=crid,
        )
    else:
        resource = client.join_meeting_by_id(
            meeting.join_meeting_id,
            meeting.passcode or None,
            tenant,
            callback_uri=callback_uri(),
            call_options=_call_options(),
            client_request_id=crid,
        )
    _created(a, resource, kind="meeting", meeting=meeting, subject=meeting.subject)


def _invite(client: GraphClient, a: Action) -> None:
    op = client.invite_participants(
        _call_id(a),
        [target_identity(a.parameters["target"])],
        replaces_call_id=a.parameters.get("replaces_call_id"),
        client_context=a.client_context,
        client_request_id=str(a.client_request_id),
    )
    _record(a, op)


def _operation(
    method: Callable[[GraphClient], Callable[..., OperationResource]],
    *,
    on_participant: bool = False,
) -> Callable[[GraphClient, Action], None]:
    """A performer for a client method that takes the call (and the participant)
    and answers with an operation. ``method`` picks the method off the client it
    is given, so a client that overrides it (a test's stand-in) is the one asked."""

    def run(client: GraphClient, a: Action) -> None:
        ids = [_call_id(a)]
        if on_participant:
            ids.append(a.parameters["participant_id"])
        op = method(client)(
            *ids,
            client_context=a.client_context,
            client_request_id=str(a.client_request_id),
        )
        _record(a, op)

    return run


def _remove(client: GraphClient, a: Action) -> None:
    client.remove_participant(
        _call_id(a),
        a.parameters["participant_id"],
        client_request_id=str(a.client_request_id),
    )
    _accepted(a)


def _play_prompt(client: GraphClient, a: Action) -> None:
    op = client.play_prompt(
        _call_id(a),
        [MediaInfo(a.parameters["uri"])],
        a.client_context,
        client_request_id=str(a.client_request_id),
    )
    _record(a, op)


def _record_response(client: GraphClient, a: Action) -> None:
    p = a.parameters
    op = client.record_response(
        _call_id(a),
        prompt=MediaInfo(p["prompt_uri"]) if p.get("prompt_uri") else None,
        initial_silence_timeout=p["initial_silence_timeout"],
        max_silence_timeout=p["max_silence_timeout"],
        max_record_duration=p["max_record_duration"],
        play_beep=p["play_beep"],
        stop_tones=p["stop_tones"],
        client_context=a.client_context,
        client_request_id=str(a.client_request_id),
    )
    _record(a, op)


_DTMF_NAMES = {"*": "star", "#": "pound"}


def dtmf_tones(keys: str) -> list[str]:
    """Graph's tone names for keys: "1#" → ["tone1", "pound"]."""
    return [_DTMF_NAMES.get(k, f"tone{k}" if k.isdigit() else k.lower()) for k in keys]


def _send_dtmf(client: GraphClient, a: Action) -> None:
    op = client.send_dtmf_tones(
        _call_id(a),
        dtmf_tones(a.parameters["tones"]),
        client_context=a.client_context,
        client_request_id=str(a.client_request_id),
    )
    _record(a, op)


def _screen_sharing(client: GraphClient, a: Action) -> None:
    client.change_screen_sharing_role(
        _call_id(a), a.parameters["role"], client_request_id=str(a.client_request_id)
    )
    _accepted(a)


def _recording_status(client: GraphClient, a: Action) -> None:
    op = client.update_recording_status(
        _call_id(a),
        a.parameters["status"],
        a.client_context,
        client_request_id=str(a.client_request_id),
    )
    _record(a, op)


def _keep_alive(client: GraphClient, a: Action) -> None:
    client.keep_alive(_call_id(a), client_request_id=str(a.client_request_id))
    lifecycle.record_outcome(
        a.pk, ActionStatus.COMPLETED, result_code=200, message="Kept alive."
    )


def _create_online_meeting(client: GraphClient, a: Action) -> None:
    """``createOrGet`` under the action's client-request-id: an attempt after one
    whose worker died gets the meeting that attempt made instead of a second one
    (contract §10.2). Every attempt asks the same: a meeting without a start
    begins when it was asked for, not when the attempt runs."""
    p = a.parameters
    start = (
        datetime.fromisoformat(p["starts_at"]) if p.get("starts_at") else a.created_at
    )
    end = (
        datetime.fromisoformat(p["ends_at"])
        if p.get("ends_at")
        else start + timedelta(hours=1)
    )
    resource = client.create_or_get_online_meeting(
        settings.ONLINE_MEETING_ORGANIZER_ID,
        str(a.client_request_id),
        p.get("subject") or "Callbot meeting",
        start,
        end,
        client_request_id=str(a.client_request_id),
    )
    meeting = store_online_meeting(resource, starts_at=start, ends_at=end)
    lifecycle.record_outcome(
        a.pk,
        ActionStatus.COMPLETED,
        result_code=201,
        message=f"Created meeting {meeting.pk}.",
    )


PERFORMERS: dict[str, Performer] = {
    K.ANSWER: _answer,
    K.REJECT: _reject,
    K.REDIRECT: _redirect,
    K.TRANSFER: _transfer,
    K.PLACE_CALL: _place_call,
    K.PLACE_GROUP_CALL: _place_group_call,
    K.JOIN_MEETING: _join_meeting,
    K.INVITE: _invite,
    K.MUTE_BOT: _operation(lambda c: c.mute),
    K.UNMUTE_BOT: _operation(lambda c: c.unmute),
    K.MUTE_PARTICIPANT: _operation(lambda c: c.mute_participant, on_participant=True),
    K.REMOVE_PARTICIPANT: _remove,
    K.START_HOLD_MUSIC: _operation(lambda c: c.start_hold_music, on_participant=True),
    K.STOP_HOLD_MUSIC: _operation(lambda c: c.stop_hold_music, on_participant=True),
    K.HANG_UP: _hang_up,
    K.PLAY_PROMPT: _play_prompt,
    K.RECORD_RESPONSE: _record_response,
    K.CANCEL_MEDIA_PROCESSING: _operation(lambda c: c.cancel_media_processing),
    K.SUBSCRIBE_TO_TONE: _operation(lambda c: c.subscribe_to_tone),
    K.SEND_DTMF_TONES: _send_dtmf,
    K.CHANGE_SCREEN_SHARING_ROLE: _screen_sharing,
    K.UPDATE_RECORDING_STATUS: _recording_status,
    K.KEEP_ALIVE: _keep_alive,
    K.CREATE_ONLINE_MEETING: _create_online_meeting,
}
_missing = kinds.ACTION_KINDS ^ set(PERFORMERS)
if _missing:  # pragma: no cover (a kind added to the table without its performer)
    raise ImportError(
        f"kinds without a performer, or performers without a kind: {_missing}"
    )
