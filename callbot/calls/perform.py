"""Carry out one queued Action against Graph: the body of ``tasks.perform_action``.

Steps, for one attempt:
1. Claim the action (``services.claim_action``): only a ``queued`` action not held
   by another worker is performed; the claim counts the attempt.
2. On a second or later attempt, look before sending again: an earlier attempt may
   have reached Graph before its worker died. Where Graph's state shows the action
   already happened (the participant is muted, the call is gone), record that instead
   of repeating it. Every attempt reuses the action's ``client-request-id``.
3. Send the request; record ``sent`` (outcome by notification) or the final outcome
   Graph answered with (contract §5: some operations come back ``completed``).
4. A retryable Graph error gives the action back and returns a ``RetryLater``; a
   permanent one fails the action with Graph's words.

No database lock is held while Graph is called. All writes go through
``services``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from callbot.calls import services
from callbot.calls.models import Action, Call, Meeting
from callbot.calls.states import ActionStatus
from callbot.graph.bodies import ChatInfo, MediaInfo, OrganizerMeetingInfo
from callbot.graph.client import GraphClient
from callbot.graph.errors import GraphError, GraphNotFoundError
from callbot.graph.factory import get_graph_client
from callbot.graph.resources import CallResource, Identity, OperationResource

logger = logging.getLogger(__name__)

K = Action.Kind


@dataclass(frozen=True)
class RetryLater:
    """The attempt hit a retryable error; try again after ``countdown`` seconds."""

    countdown: float
    reason: str


def perform(action_id: int) -> RetryLater | None:
    """One attempt at an action; see the module docstring for the steps."""
    lease = settings.ACTION_LEASE_SECONDS
    action = services.claim_action(action_id, lease)
    if action is None:
        held = services.lease_left(action_id)
        if held is None:
            return None  # done already, or gone
        # Queued but claimed by a worker that may have died: come back when the
        # claim lapses (a redelivered message can arrive before that).
        return RetryLater(countdown=held + 0.5, reason="claimed by another attempt")
    if _waits_for_earlier(action):
        # Actions on one call reach Graph in the order they were asked for (a
        # cancel before the next prompt, an IVR's steps); workers may take them
        # in any order.
        services.release_action(action.pk)
        return RetryLater(countdown=0.05, reason="an earlier action is queued")
    tenant = action.call.tenant_id if action.call is not None else None
    client = get_graph_client().for_tenant(tenant or None)
    try:
        if action.attempts > 1 and _already_done(client, action):
            return None
        _PERFORMERS[action.kind](client, action)
    except GraphError as exc:
        if exc.retryable and action.attempts < settings.ACTION_MAX_ATTEMPTS:
            services.release_action(action.pk)
            countdown = exc.retry_after or min(2 ** (action.attempts - 1), 30)
            logger.warning(
                "action %s: %s; retrying in %.1f s",
                action.pk,
                exc,
                countdown,
                extra={"action_id": action.pk},
            )
            return RetryLater(countdown=float(countdown), reason=str(exc))
        services.record_outcome(
            action.pk,
            ActionStatus.FAILED,
            result_code=exc.status or None,
            message=exc.message or str(exc),
            error_code=error_code(exc),
        )
    except (ValueError, KeyError, Meeting.DoesNotExist) as exc:
        # A stored action Graph cannot be asked for (bad parameters slipped in by
        # an older version, a meeting deleted since): fail it, do not retry.
        services.record_outcome(
            action.pk, ActionStatus.FAILED, message=str(exc), error_code="invalid"
        )
    return None


def _waits_for_earlier(action: Action) -> bool:
    """True if an earlier action of the same call is still queued (and recent:
    one stuck longer than a lease is the sweep's business, not a reason to wait)."""
    if action.call_id is None:
        return False
    recent = timezone.now() - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    return Action.objects.filter(
        call_id=action.call_id,
        pk__lt=action.pk,
        status=ActionStatus.QUEUED,
        created_at__gte=recent,
    ).exists()


def error_code(exc: GraphError) -> str:
    """A stable code for the kind of Graph failure (``live.action_message`` words)."""
    if exc.status == 0:
        return "transport"
    if exc.status >= 500:
        return "graph_5xx"
    return f"graph_{exc.status}"


# --- looking before sending again ----------------------------------------------------


def _already_done(client: GraphClient, action: Action) -> bool:
    """True (and the outcome recorded) if Graph shows an earlier attempt happened.

    Only what Graph lets us read is checked; for the rest (prompts, recordings,
    tones, hold music, new calls) the request is sent again with the same
    client-request-id.
    """
    call = action.call
    crid = str(action.client_request_id)
    pid = str(action.parameters.get("participant_id", ""))
    try:
        if action.kind in (K.HANG_UP, K.REJECT, K.REDIRECT) and call is not None:
            state = client.get_call(call.graph_id, client_request_id=crid).state
            if state not in ("terminating", "terminated"):
                return False
        elif action.kind == K.ANSWER and call is not None:
            state = client.get_call(call.graph_id, client_request_id=crid).state
            if state in (None, "incoming"):
                return False
            services.record_sent(action.pk)
            return True
        elif action.kind == K.MUTE_PARTICIPANT and call is not None:
            p = client.get_participant(call.graph_id, pid, client_request_id=crid)
            if not p.is_muted:
                return False
        elif action.kind in (K.MUTE_BOT, K.UNMUTE_BOT) and call is not None:
            if not call.my_participant_id:
                return False
            p = client.get_participant(
                call.graph_id, call.my_participant_id, client_request_id=crid
            )
            if bool(p.is_muted) != (action.kind == K.MUTE_BOT):
                return False
        elif action.kind == K.INVITE and call is not None:
            target = action.parameters["target"]
            wanted = target.get("user_id") or target.get("phone")
            people = client.list_participants(call.graph_id, client_request_id=crid)
            if not any(p.identity.id.lower() == wanted for p in people):
                return False
        elif action.kind == K.REMOVE_PARTICIPANT and call is not None:
            client.get_participant(call.graph_id, pid, client_request_id=crid)
            return False
        elif action.kind == K.JOIN_MEETING:
            # Graph cannot list calls, and a second POST joins a second time; but
            # the earlier join's notifications reached the webhook within the
            # lease, so its call is in our database.
            joined = _call_joined_earlier(action)
            if joined is None:
                return False
            services.record_sent(action.pk, call=joined)
            return True
        else:
            return False
    except GraphNotFoundError:
        if action.kind not in (K.HANG_UP, K.REJECT, K.REDIRECT, K.REMOVE_PARTICIPANT):
            return False
    logger.info(
        "action %s already happened in an earlier attempt",
        action.pk,
        extra={"action_id": action.pk},
    )
    services.record_outcome(
        action.pk,
        ActionStatus.COMPLETED,
        message="Done (confirmed after a retry).",
    )
    return True


def _call_joined_earlier(action: Action) -> Call | None:
    """A live call in the action's meeting, created since the action was asked for
    and linked to no join: what an earlier attempt's join made. (Its notifications
    say no direction; only an invitation the bot answered is ``incoming``.)"""
    return (
        Call.objects.filter(
            meeting_id=action.parameters.get("meeting_id"),
            created_at__gte=action.created_at,
        )
        .exclude(state="terminated")
        .exclude(direction="incoming")
        .exclude(actions__kind=K.JOIN_MEETING)
        .order_by("created_at")
        .first()
    )


# --- the requests --------------------------------------------------------------------


def callback_uri() -> str:
    """Where Graph should send this bot's notifications."""
    return f"{settings.BOT_PUBLIC_URL.rstrip('/')}/api/calling/callback"


def target_identity(target: dict[str, str]) -> Identity:
    """The Graph identity for a stored target (``services.clean_target``)."""
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
        services.record_outcome(
            action.pk,
            status,
            result_code=info.code if info else None,
            result_subcode=info.subcode if info else None,
            message=info.message if info else "",
            operation_id=op.id or "",
        )
    else:
        services.record_sent(action.pk, operation_id=op.id or "")


def _accepted(action: Action) -> None:
    """Graph answered 202/204 and nothing more will say how it went."""
    services.record_outcome(
        action.pk, ActionStatus.COMPLETED, result_code=202, message="Accepted."
    )


def _answer(client: GraphClient, a: Action) -> None:
    prompts = [MediaInfo(u) for u in a.parameters.get("prompt_uris", [])]
    client.answer(
        _call_id(a),
        callback_uri=callback_uri(),
        prompts_to_prefetch=prompts,
        client_request_id=str(a.client_request_id),
    )
    services.record_sent(a.pk)


def _reject(client: GraphClient, a: Action) -> None:
    client.reject(
        _call_id(a),
        a.parameters.get("reason", "none"),
        client_request_id=str(a.client_request_id),
    )
    services.record_sent(a.pk)


def _redirect(client: GraphClient, a: Action) -> None:
    client.redirect(
        _call_id(a),
        [target_identity(a.parameters["target"])],
        callback_uri=callback_uri(),
        client_request_id=str(a.client_request_id),
    )
    services.record_sent(a.pk)


def _transfer(client: GraphClient, a: Action) -> None:
    client.transfer(
        _call_id(a),
        target_identity(a.parameters["target"]),
        client_context=a.client_context,
        client_request_id=str(a.client_request_id),
    )
    services.record_sent(a.pk)


def _hang_up(client: GraphClient, a: Action) -> None:
    client.delete_call(_call_id(a), client_request_id=str(a.client_request_id))
    services.record_sent(a.pk)


def _created(a: Action, resource: CallResource, **fields: Any) -> None:
    call = services.store_created_call(resource, **fields)
    services.record_sent(a.pk, call=call)


def _place_call(client: GraphClient, a: Action) -> None:
    target = a.parameters["target"]
    resource = client.place_peer_to_peer_call(
        target_identity(target),
        callback_uri=callback_uri(),
        tenant_id=settings.GRAPH_TENANT_ID,
        client_request_id=str(a.client_request_id),
    )
    _created(a, resource, kind="peer_to_peer", targets=[target])


def _place_group_call(client: GraphClient, a: Action) -> None:
    targets = a.parameters["targets"]
    resource = client.place_group_call(
        [target_identity(t) for t in targets],
        a.parameters.get("subject") or None,
        callback_uri=callback_uri(),
        tenant_id=settings.GRAPH_TENANT_ID,
        client_request_id=str(a.client_request_id),
    )
    _created(
        a,
        resource,
        kind="group",
        targets=targets,
        subject=a.parameters.get("subject", ""),
    )


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
            client_request_id=crid,
        )
    else:
        resource = client.join_meeting_by_id(
            meeting.join_meeting_id,
            meeting.passcode or None,
            tenant,
            callback_uri=callback_uri(),
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
    method: Callable[..., OperationResource], *, on_participant: bool = False
) -> Callable[[GraphClient, Action], None]:
    """A performer for a client method that takes the call (and the participant)
    and answers with an operation."""

    def run(client: GraphClient, a: Action) -> None:
        ids = [_call_id(a)]
        if on_participant:
            ids.append(a.parameters["participant_id"])
        op = method(
            client,
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
    services.record_outcome(
        a.pk, ActionStatus.COMPLETED, result_code=200, message="Kept alive."
    )


def _create_online_meeting(client: GraphClient, a: Action) -> None:
    p = a.parameters
    now = timezone.now()
    start = datetime.fromisoformat(p["starts_at"]) if p.get("starts_at") else now
    end = (
        datetime.fromisoformat(p["ends_at"])
        if p.get("ends_at")
        else start + timedelta(hours=1)
    )
    resource = client.create_online_meeting(
        settings.ONLINE_MEETING_ORGANIZER_ID,
        p.get("subject") or "Callbot meeting",
        start,
        end,
        client_request_id=str(a.client_request_id),
    )
    meeting = services.store_online_meeting(resource, starts_at=start, ends_at=end)
    services.record_outcome(
        a.pk,
        ActionStatus.COMPLETED,
        result_code=201,
        message=f"Created meeting {meeting.pk}.",
    )


_PERFORMERS: dict[str, Callable[[GraphClient, Action], None]] = {
    K.ANSWER: _answer,
    K.REJECT: _reject,
    K.REDIRECT: _redirect,
    K.TRANSFER: _transfer,
    K.PLACE_CALL: _place_call,
    K.PLACE_GROUP_CALL: _place_group_call,
    K.JOIN_MEETING: _join_meeting,
    K.INVITE: _invite,
    K.MUTE_BOT: _operation(GraphClient.mute),
    K.UNMUTE_BOT: _operation(GraphClient.unmute),
    K.MUTE_PARTICIPANT: _operation(GraphClient.mute_participant, on_participant=True),
    K.REMOVE_PARTICIPANT: _remove,
    K.START_HOLD_MUSIC: _operation(GraphClient.start_hold_music, on_participant=True),
    K.STOP_HOLD_MUSIC: _operation(GraphClient.stop_hold_music, on_participant=True),
    K.HANG_UP: _hang_up,
    K.PLAY_PROMPT: _play_prompt,
    K.RECORD_RESPONSE: _record_response,
    K.CANCEL_MEDIA_PROCESSING: _operation(GraphClient.cancel_media_processing),
    K.SUBSCRIBE_TO_TONE: _operation(GraphClient.subscribe_to_tone),
    K.SEND_DTMF_TONES: _send_dtmf,
    K.CHANGE_SCREEN_SHARING_ROLE: _screen_sharing,
    K.UPDATE_RECORDING_STATUS: _recording_status,
    K.KEEP_ALIVE: _keep_alive,
    K.CREATE_ONLINE_MEETING: _create_online_meeting,
}
if set(_PERFORMERS) != set(Action.Kind.values):  # pragma: no cover
    raise ImportError("every Action.Kind needs a performer")


def silent_call_ids(now: datetime | None = None) -> list[int]:
    """Live calls with no notification for ``RECONCILE_SILENCE_SECONDS``."""
    now = now or timezone.now()
    quiet = now - timedelta(seconds=settings.RECONCILE_SILENCE_SECONDS)
    return list(
        Call.objects.exclude(state="terminated")
        .filter(last_notification_at__lt=quiet)
        .values_list("pk", flat=True)
    )


def reconcile_call(call_id: int) -> str:
    """GET a silent call from Graph; close it here if Graph no longer knows it.

    Returns what was found: ``gone`` (closed here), ``alive`` (state refreshed) or
    ``skipped``.
    """
    call = Call.objects.filter(pk=call_id).exclude(state="terminated").first()
    if call is None:
        return "skipped"
    client = get_graph_client().for_tenant(call.tenant_id or None)
    try:
        client.get_call(call.graph_id)
    except GraphNotFoundError:
        services.close_lost_call(call.pk)
        return "gone"
    services.note_call_alive(call.pk)
    return "alive"
