"""What users and the bot ask Callbot to do: ``request_action`` and the Action lifecycle.

With ``ingest.py`` this is one of the two modules that write domain state. Every
entry point here works in one transaction: lock the call, check the move, write the
Action and an AuditEntry, bump the call's version, and register the side effects
(the live delta, the Celery task) with ``transaction.on_commit``. The Graph request
itself happens in ``tasks.perform_action``, never under a lock.

An Action moves ``queued`` → ``sent`` → ``completed``/``failed``:

* ``queued``: stored, the task is enqueued;
* ``sent``: Graph accepted it and the outcome comes later, by an operation
  notification (``playPrompt``, ``invite``…) or by the call's own state (``answer``
  completes when the call is established);
* ``completed``/``failed``: final, with Graph's ``resultInfo`` or error.

Must not import the dashboard; it never calls Graph.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from callbot.calls import live
from callbot.calls.models import (
    Action,
    AuditEntry,
    Call,
    Meeting,
    Participant,
    Recording,
)
from callbot.calls.states import (
    CONNECTED_STATES,
    ActionStatus,
    CallKind,
    CallState,
    can_move_action,
    settled_status,
)
from callbot.graph.meetings import JoinUrlError, parse_join_web_url

logger = logging.getLogger(__name__)

# Who asks: a signed-in user, an anonymous one (refused), or None for the bot.
Actor = User | AnonymousUser | None

K = Action.Kind
S = CallState
BOT_NAME = "callbot"

# Roles whose microphones "mute everyone" leaves alone.
PRESENTER_ROLES = frozenset({"presenter", "organizer", "producer", "coorganizer"})

_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_GUID = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")
_DTMF = re.compile(r"^[0-9*#A-Da-d]{1,32}$")


class ActionRefusedError(Exception):
    """A request Callbot will not make; ``message`` says why in a supervisor's words.

    ``code`` is one of ``forbidden``, ``call_not_found``, ``call_ended``,
    ``wrong_state``, ``participant_not_found``, ``unsupported``, ``invalid``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Rule:
    """What an action needs: a call in one of ``states``, maybe a present participant."""

    states: frozenset[CallState] | None  # None: the action creates the call
    participant: bool = False
    group_only: bool = False
    verb: str = ""


_CONNECTED = frozenset(CONNECTED_STATES)
_LIVE_BUT_INCOMING = frozenset(set(CallState) - {S.TERMINATED, S.INCOMING})
RULES: dict[str, Rule] = {
    K.ANSWER: Rule(frozenset({S.INCOMING}), verb="answer"),
    K.REJECT: Rule(frozenset({S.INCOMING}), verb="reject"),
    K.REDIRECT: Rule(frozenset({S.INCOMING}), verb="redirect"),
    K.TRANSFER: Rule(frozenset({S.ESTABLISHED}), verb="transfer"),
    K.PLACE_CALL: Rule(None),
    K.PLACE_GROUP_CALL: Rule(None),
    K.JOIN_MEETING: Rule(None),
    K.CREATE_ONLINE_MEETING: Rule(None),
    K.INVITE: Rule(_CONNECTED, verb="invite someone to"),
    K.MUTE_BOT: Rule(_CONNECTED, verb="mute the bot in"),
    K.UNMUTE_BOT: Rule(_CONNECTED, verb="unmute the bot in"),
    K.MUTE_PARTICIPANT: Rule(
        _CONNECTED, participant=True, group_only=True, verb="mute someone in"
    ),
    K.REMOVE_PARTICIPANT: Rule(
        _CONNECTED, participant=True, group_only=True, verb="remove someone from"
    ),
    K.START_HOLD_MUSIC: Rule(_CONNECTED, participant=True, verb="put someone on hold"),
    K.STOP_HOLD_MUSIC: Rule(_CONNECTED, participant=True, verb="take someone off hold"),
    K.HANG_UP: Rule(_LIVE_BUT_INCOMING, verb="hang up"),
    K.PLAY_PROMPT: Rule(_CONNECTED, verb="play a prompt in"),
    K.RECORD_RESPONSE: Rule(_CONNECTED, verb="record in"),
    K.CANCEL_MEDIA_PROCESSING: Rule(_CONNECTED, verb="cancel media in"),
    K.SUBSCRIBE_TO_TONE: Rule(_CONNECTED, verb="collect tones in"),
    K.SEND_DTMF_TONES: Rule(_CONNECTED, verb="send tones in"),
    K.CHANGE_SCREEN_SHARING_ROLE: Rule(
        _CONNECTED, group_only=True, verb="change screen sharing in"
    ),
    K.UPDATE_RECORDING_STATUS: Rule(_CONNECTED, verb="set recording status in"),
    K.KEEP_ALIVE: Rule(_LIVE_BUT_INCOMING, verb="keep alive"),
}

# Actions only the bot itself requests.
BOT_ONLY = frozenset({K.KEEP_ALIVE})


# --- requesting ---------------------------------------------------------------------


def request_action(
    kind: str,
    *,
    actor: Actor,
    call: Call | int | None = None,
    participant_id: str = "",
    params: Mapping[str, Any] | None = None,
    client_ip: str | None = None,
) -> Action:
    """Validate and queue one action; Graph is called by ``tasks.perform_action``.

    ``actor`` None is the bot itself (policy, IVR, beat); a user needs the
    ``calls.request_action`` permission. ``participant_id`` is the participant's
    Graph id. ``params`` are described per kind in docs/call-control.md.

    In one transaction: lock the call, check its state and the participant, store
    the Action (``queued``) and an AuditEntry, bump the call's version. After
    commit: publish the delta on ``call.<pk>`` and ``calls.live``, enqueue the task.

    Raises ``ActionRefusedError``; the refusal is audited (committed on its own).
    """
    params = dict(params or {})
    call_pk = call.pk if isinstance(call, Call) else call
    try:
        with transaction.atomic():
            action, delta = _queue(kind, actor, call_pk, participant_id, params)
            _audit(
                actor,
                action.kind,
                action.target,
                action.call,
                "requested",
                {"action_id": action.pk, "params": action.parameters},
                client_ip,
            )
            # Enqueue first: the Graph request should not wait for the live push.
            transaction.on_commit(lambda: _enqueue(action.pk))
            if delta is not None:
                live.publish_on_commit([delta])
    except ActionRefusedError as refused:
        _audit_refusal(actor, kind, call_pk, participant_id, refused, client_ip)
        raise
    return action


def request_mute_all(
    *,
    call: Call | int,
    actor: Actor,
    client_ip: str | None = None,
) -> list[Action]:
    """Mute every present, unmuted person who is not the bot or a presenter.

    One ``mute_participant`` action each (Graph mutes one participant per request).
    Returns the actions queued; an empty list when everyone is already muted.
    Raises ``ActionRefusedError`` as ``request_action`` does.
    """
    call_pk = call.pk if isinstance(call, Call) else call
    targets = list(
        Participant.objects.filter(
            call_id=call_pk, left_at__isnull=True, is_bot=False, is_muted=False
        )
        .exclude(role__in=PRESENTER_ROLES)
        .values_list("graph_id", flat=True)
    )
    _check_actor(actor, K.MUTE_PARTICIPANT)
    return [
        request_action(
            K.MUTE_PARTICIPANT,
            actor=actor,
            call=call_pk,
            participant_id=pid,
            client_ip=client_ip,
        )
        for pid in targets
    ]


def _queue(
    kind: str,
    actor: Actor,
    call_pk: int | None,
    participant_id: str,
    params: dict[str, Any],
) -> tuple[Action, live.CallDelta | None]:
    if kind == "unmute_participant":
        raise ActionRefusedError(
            "unsupported",
            "Teams does not let a bot unmute someone else; ask them to unmute "
            "themselves.",
        )
    if kind not in RULES:
        raise ActionRefusedError("invalid", f"Unknown action {kind!r}.")
    rule = RULES[kind]
    _check_actor(actor, kind)
    call: Call | None = None
    participant: Participant | None = None
    if rule.states is not None:
        call = _locked_call(call_pk, kind, rule)
        if rule.participant:
            participant = _present_participant(call, participant_id)
    elif call_pk is not None:
        raise ActionRefusedError("invalid", f"{_label(kind)} does not act on a call.")
    clean, target = _clean_params(kind, params, call, participant)
    action = Action(
        call=call,
        participant=participant,
        requested_by=actor if isinstance(actor, User) else None,
        kind=kind,
        target=target[:255],
        parameters=clean,
    )
    action.client_context = str(action.client_request_id)
    action.save()
    if call is None:
        return action, None
    return action, _bump(call, [action])


def _check_actor(actor: Actor, kind: str) -> None:
    if actor is None:
        return
    if kind in BOT_ONLY:
        raise ActionRefusedError("forbidden", f"Only the bot may {_label(kind)}.")
    if not actor.is_authenticated or not actor.is_active:
        raise ActionRefusedError("forbidden", "Sign in to act on calls.")
    if not actor.has_perm("calls.request_action"):
        raise ActionRefusedError(
            "forbidden", "Your role may watch calls but not act on them."
        )


def _locked_call(call_pk: int | None, kind: str, rule: Rule) -> Call:
    if call_pk is None:
        raise ActionRefusedError("invalid", f"{_label(kind)} needs a call.")
    call = Call.objects.select_for_update(no_key=True).filter(pk=call_pk).first()
    if call is None:
        raise ActionRefusedError("call_not_found", f"There is no call {call_pk}.")
    if call.state == S.TERMINATED:
        raise ActionRefusedError(
            "call_ended", f"The call has ended; nothing can {rule.verb} it any more."
        )
    if rule.states is not None and CallState(call.state) not in rule.states:
        raise ActionRefusedError(
            "wrong_state",
            f"Cannot {rule.verb} a call that is {call.get_state_display().lower()}"
            f" (needs {_states_text(rule.states)}).",
        )
    if rule.group_only and call.kind == CallKind.PEER_TO_PEER:
        raise ActionRefusedError(
            "wrong_state",
            f"Cannot {rule.verb} a peer-to-peer call; invite someone to make it a "
            "group call first.",
        )
    return call


def _states_text(states: frozenset[CallState]) -> str:
    return " or ".join(sorted(s.label.lower() for s in states))


def _present_participant(call: Call, participant_id: str) -> Participant:
    if not participant_id:
        raise ActionRefusedError("invalid", "Choose a participant.")
    participant = (
        call.participants.filter(graph_id=participant_id, left_at__isnull=True)
        .order_by("-joined_at")
        .first()
    )
    if participant is None:
        raise ActionRefusedError(
            "participant_not_found", "That participant is no longer in the call."
        )
    if participant.is_bot:
        raise ActionRefusedError(
            "invalid", "That is the bot itself; use the bot's own controls."
        )
    return participant


def _label(kind: str) -> str:
    try:
        return str(Action.Kind(kind).label).lower()
    except ValueError:
        return kind


# --- parameters ---------------------------------------------------------------------


def _clean_params(
    kind: str,
    params: dict[str, Any],
    call: Call | None,
    participant: Participant | None,
) -> tuple[dict[str, Any], str]:
    """Validated parameters and a short target label, or ``ActionRefusedError``."""
    if participant is not None:
        return {"participant_id": participant.graph_id}, (
            participant.display_name or participant.identity_id or participant.graph_id
        )
    if kind in (K.REDIRECT, K.TRANSFER, K.PLACE_CALL):
        target = clean_target(params.get("target"))
        return {"target": target}, target_label(target)
    if kind == K.INVITE:
        target = clean_target(params.get("target"))
        clean: dict[str, Any] = {"target": target}
        replaces = params.get("replaces_call_id")
        if replaces:
            if not isinstance(replaces, str) or not _GUID.match(replaces):
                raise ActionRefusedError(
                    "invalid", "replaces_call_id must be a call id."
                )
            clean["replaces_call_id"] = replaces
        return clean, target_label(target)
    if kind == K.PLACE_GROUP_CALL:
        raw = params.get("targets")
        if not isinstance(raw, list) or not raw:
            raise ActionRefusedError("invalid", "A group call needs a list of targets.")
        if len(raw) > 5:
            raise ActionRefusedError(
                "invalid",
                "A group call starts with at most 5 targets; invite the rest.",
            )
        targets = [clean_target(t) for t in raw]
        subject = _text(params.get("subject"), "subject", 255)
        return {"targets": targets, "subject": subject}, ", ".join(
            target_label(t) for t in targets
        )
    if kind == K.REJECT:
        reason = params.get("reason", "none")
        if reason not in ("none", "busy", "forbidden"):
            raise ActionRefusedError(
                "invalid", "Reason must be none, busy or forbidden."
            )
        return {"reason": reason}, reason
    if kind == K.JOIN_MEETING:
        meeting = _meeting_to_join(params)
        return {"meeting_id": meeting.pk}, meeting.subject or f"meeting {meeting.pk}"
    if kind == K.CREATE_ONLINE_MEETING:
        subject = _text(params.get("subject"), "subject", 255)
        clean = {"subject": subject}
        for name in ("starts_at", "ends_at"):
            if params.get(name):
                clean[name] = _iso(params[name], name)
        return clean, subject
    if kind == K.PLAY_PROMPT:
        uri = _uri(params.get("uri"), "prompt uri")
        name = _text(params.get("name"), "name", 100)
        return {"uri": uri, "name": name}, name or uri.rsplit("/", 1)[-1]
    if kind == K.RECORD_RESPONSE:
        return _record_params(params), "recording"
    if kind == K.SEND_DTMF_TONES:
        tones = params.get("tones")
        if not isinstance(tones, str) or not _DTMF.match(tones):
            raise ActionRefusedError(
                "invalid", "Tones are 1 to 32 of 0-9, *, # and A-D."
            )
        return {"tones": tones}, tones
    if kind == K.CHANGE_SCREEN_SHARING_ROLE:
        role = params.get("role")
        if role not in ("viewer", "sharer"):
            raise ActionRefusedError("invalid", "Role must be viewer or sharer.")
        return {"role": role}, str(role)
    if kind == K.UPDATE_RECORDING_STATUS:
        status = params.get("status")
        if status not in ("recording", "notRecording", "failed"):
            raise ActionRefusedError(
                "invalid", "Recording status must be recording or notRecording."
            )
        return {"status": status}, str(status)
    if kind == K.ANSWER:
        clean = {}
        if params.get("prompt_uris"):
            uris = params["prompt_uris"]
            if not isinstance(uris, list):
                raise ActionRefusedError("invalid", "prompt_uris must be a list.")
            clean["prompt_uris"] = [_uri(u, "prompt uri") for u in uris]
        return clean, call.source_display if call is not None else ""
    return {}, ""


def clean_target(raw: Any) -> dict[str, str]:
    """A call target: ``{"user_id": <object id>}`` or ``{"phone": "+E.164"}``."""
    if not isinstance(raw, Mapping):
        raise ActionRefusedError(
            "invalid", "Give a target: an Azure AD object id or a phone number."
        )
    name = _text(raw.get("display_name"), "display name", 255)
    if raw.get("user_id"):
        user_id = str(raw["user_id"]).strip()
        if not _GUID.match(user_id):
            raise ActionRefusedError(
                "invalid", f"{user_id!r} is not an Azure AD object id (a GUID)."
            )
        return {"user_id": user_id.lower(), "display_name": name}
    if raw.get("phone"):
        phone = re.sub(r"[\s().-]", "", str(raw["phone"]))
        if not _PHONE.match(phone):
            raise ActionRefusedError(
                "invalid", f"{raw['phone']!r} is not a phone number in +E.164 form."
            )
        return {"phone": phone, "display_name": name}
    raise ActionRefusedError(
        "invalid", "Give a target: an Azure AD object id or a phone number."
    )


def target_label(target: Mapping[str, str]) -> str:
    return (
        target.get("display_name") or target.get("user_id") or target.get("phone", "")
    )


def _text(value: Any, what: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ActionRefusedError("invalid", f"{what} must be text of at most {limit}.")
    return value.strip()


def _uri(value: Any, what: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://\S+$", value):
        raise ActionRefusedError("invalid", f"The {what} must be an http(s) URL.")
    return value


def _iso(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    try:
        return datetime.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ActionRefusedError(
            "invalid", f"{what} must be a date and time."
        ) from None


def _record_params(params: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for name, default in (
        ("max_record_duration", 10),
        ("initial_silence_timeout", 5),
        ("max_silence_timeout", 2),
    ):
        value = params.get(name, default)
        if not isinstance(value, int) or not 1 <= value <= 120:
            raise ActionRefusedError("invalid", f"{name} must be 1 to 120 seconds.")
        clean[name] = value
    stop = params.get("stop_tones", ["#"])
    if not isinstance(stop, list) or not all(
        isinstance(t, str) and len(t) == 1 and t in "0123456789*#ABCD" for t in stop
    ):
        raise ActionRefusedError("invalid", "stop_tones are single keys like '#'.")
    clean["stop_tones"] = stop
    clean["play_beep"] = bool(params.get("play_beep", True))
    if params.get("prompt_uri"):
        clean["prompt_uri"] = _uri(params["prompt_uri"], "prompt uri")
    return clean


# --- meetings -----------------------------------------------------------------------


def _meeting_to_join(params: Mapping[str, Any]) -> Meeting:
    if params.get("meeting_id"):
        meeting = Meeting.objects.filter(pk=params["meeting_id"]).first()
        if meeting is None:
            raise ActionRefusedError("invalid", "There is no such meeting.")
    elif params.get("join_web_url"):
        meeting = _meeting_from_url(str(params["join_web_url"]))
    else:
        raise ActionRefusedError("invalid", "Choose a meeting or paste its join link.")
    if not (meeting.can_join_by_coordinates or meeting.join_meeting_id):
        raise ActionRefusedError(
            "invalid",
            "This meeting has no join coordinates; paste its Teams join link.",
        )
    return meeting


def _meeting_from_url(url: str) -> Meeting:
    try:
        coords = parse_join_web_url(url)
    except JoinUrlError as exc:
        raise ActionRefusedError("invalid", f"Not a Teams join link: {exc}.") from None
    meeting, _ = Meeting.objects.get_or_create(
        thread_id=coords.thread_id,
        defaults={
            "join_web_url": coords.join_web_url,
            "message_id": coords.message_id,
            "reply_chain_message_id": coords.reply_chain_message_id or "",
            "organizer_id": coords.organizer_id,
            "tenant_id": coords.tenant_id,
        },
    )
    return meeting


def save_meeting(
    *,
    actor: Actor,
    subject: str = "",
    join_web_url: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    auto_join: bool = False,
    leave_at_end: bool = False,
    meeting: Meeting | None = None,
    client_ip: str | None = None,
) -> Meeting:
    """Create or update a stored meeting, taking coordinates from a pasted link.

    With ``auto_join`` the beat task ``join_due_meetings`` joins it at
    ``starts_at``; with ``leave_at_end`` the bot hangs up at ``ends_at``. Raises
    ``ActionRefusedError`` for a link that does not parse, an end before the start,
    or an actor without ``calls.request_action``.
    """
    _check_actor(actor, K.JOIN_MEETING)
    if starts_at and ends_at and ends_at < starts_at:
        raise ActionRefusedError("invalid", "The meeting cannot end before it starts.")
    if auto_join and starts_at is None:
        raise ActionRefusedError("invalid", "A scheduled join needs a start time.")
    with transaction.atomic():
        if join_web_url:
            try:
                coords = parse_join_web_url(join_web_url)
            except JoinUrlError as exc:
                raise ActionRefusedError(
                    "invalid", f"Not a Teams join link: {exc}."
                ) from None
            existing = Meeting.objects.filter(thread_id=coords.thread_id).first()
            if meeting is None:
                meeting = existing or Meeting()
            elif existing is not None and existing.pk != meeting.pk:
                raise ActionRefusedError(
                    "invalid", "Another stored meeting already has this join link."
                )
            meeting.join_web_url = coords.join_web_url
            meeting.thread_id = coords.thread_id
            meeting.message_id = coords.message_id
            meeting.reply_chain_message_id = coords.reply_chain_message_id or ""
            meeting.organizer_id = coords.organizer_id
            meeting.tenant_id = coords.tenant_id
        elif meeting is None:
            raise ActionRefusedError("invalid", "Paste the meeting's Teams join link.")
        if subject:
            meeting.subject = subject[:255]
        if starts_at != meeting.starts_at:
            meeting.joined_at = None  # a moved meeting is joined at its new time
        meeting.starts_at, meeting.ends_at = starts_at, ends_at
        meeting.auto_join, meeting.leave_at_end = auto_join, leave_at_end
        meeting.save()
        _audit(
            actor,
            "save_meeting",
            meeting.subject or meeting.thread_id,
            None,
            "saved",
            {"meeting_id": meeting.pk, "auto_join": auto_join},
            client_ip,
        )
    return meeting


def due_meetings(now: datetime | None = None) -> list[int]:
    """Claim meetings whose scheduled join is due, once each; returns their ids.

    The guarded update (``joined_at`` still null) makes two beat runs, or two
    workers, claim a meeting only once.
    """
    now = now or timezone.now()
    late = now - timedelta(seconds=settings.MEETING_JOIN_GRACE_SECONDS)
    claimed: list[int] = []
    candidates = Meeting.objects.filter(
        auto_join=True, joined_at__isnull=True, starts_at__lte=now
    ).values_list("pk", "starts_at")
    for pk, starts_at in candidates:
        if Meeting.objects.filter(pk=pk, joined_at__isnull=True).update(joined_at=now):
            if starts_at is not None and starts_at < late:
                logger.warning("meeting %s started too long ago; not joining", pk)
                continue
            claimed.append(pk)
    return claimed


def meeting_calls_to_leave(now: datetime | None = None) -> list[int]:
    """Live meeting calls whose meeting has ended and asks the bot to leave."""
    now = now or timezone.now()
    return list(
        Call.objects.filter(
            kind=CallKind.MEETING,
            meeting__leave_at_end=True,
            meeting__ends_at__lte=now,
        )
        .exclude(state__in=[S.TERMINATED, S.TERMINATING])
        .exclude(actions__kind=K.HANG_UP, actions__status__in=["queued", "sent"])
        .values_list("pk", flat=True)
    )


# --- the Action lifecycle (used by tasks and ingest) ---------------------------------


def claim_action(action_id: int, lease_seconds: float) -> Action | None:
    """Take a queued action for one attempt; None if it is not ours to perform.

    A guarded update: the action must still be ``queued`` and not held by another
    worker (``claimed_until`` passed). ``attempts`` counts the claims, so a value
    above one tells the task an earlier attempt may have reached Graph.
    """
    now = timezone.now()
    taken = Action.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=action_id,
        status=ActionStatus.QUEUED,
    ).update(
        attempts=F("attempts") + 1,
        claimed_until=now + timedelta(seconds=lease_seconds),
        updated_at=now,
    )
    if not taken:
        return None
    return Action.objects.select_related("call", "participant").get(pk=action_id)


def lease_left(action_id: int) -> float | None:
    """Seconds until a queued action's claim lapses; None if it is not queued."""
    rows = list(
        Action.objects.filter(pk=action_id, status=ActionStatus.QUEUED).values_list(
            "claimed_until", flat=True
        )
    )
    if not rows:
        return None
    until = rows[0]
    return 0.0 if until is None else max((until - timezone.now()).total_seconds(), 0.0)


def release_action(action_id: int) -> None:
    """Give a claimed, still queued action back (a retry is scheduled)."""
    Action.objects.filter(pk=action_id, status=ActionStatus.QUEUED).update(
        claimed_until=None
    )


def record_sent(
    action_id: int,
    *,
    operation_id: str = "",
    call: Call | None = None,
) -> Action | None:
    """Graph accepted the action; its outcome comes later. Links a created call."""
    from callbot.graph.resources import normalise_id

    def change(action: Action) -> None:
        action.status = ActionStatus.SENT
        action.sent_at = timezone.now()
        if operation_id:
            action.operation_id = operation_id[:64]
            action.operation_key = normalise_id(operation_id)[:64]
        if call is not None:
            action.call = call

    action = _move(action_id, ActionStatus.SENT, change)
    if action is not None and call is not None:
        _settle_by_current_state(action)
    return action


def _settle_by_current_state(action: Action) -> None:
    """Finish a just-linked action if its call already shows the outcome.

    The first notifications of a call Callbot placed or joined can be applied
    before Graph's answer links the action to the call; ingest then found no action
    to settle, so the call's present state settles it here.
    """
    if action.call_id is None:
        return
    row = (
        Call.objects.filter(pk=action.call_id)
        .values("state", "result_code", "result_subcode", "result_message")
        .first()
    )
    status = settled_status(action.kind, row["state"]) if row else None
    if row is None or status is None:
        return
    if status == ActionStatus.COMPLETED:
        record_outcome(action.pk, status, message="Established.")
    else:
        record_outcome(
            action.pk,
            status,
            result_code=row["result_code"],
            result_subcode=row["result_subcode"],
            message=row["result_message"] or "The call ended before it was set up.",
        )


def record_outcome(
    action_id: int,
    status: str,
    *,
    result_code: int | None = None,
    result_subcode: int | None = None,
    message: str = "",
    error_code: str = "",
    operation_id: str = "",
) -> Action | None:
    """Move an action to ``completed`` or ``failed``; a final action stays as it is."""
    from callbot.graph.resources import normalise_id

    def change(action: Action) -> None:
        now = timezone.now()
        action.status = status
        action.completed_at = now
        action.sent_at = action.sent_at or now
        action.result_code = result_code
        action.result_subcode = result_subcode
        action.result_message = message[:2000]
        action.error_code = error_code[:64]
        if operation_id and not action.operation_id:
            action.operation_id = operation_id[:64]
            action.operation_key = normalise_id(operation_id)[:64]

    return _move(action_id, status, change)


def _move(action_id: int, status: str, change: Any) -> Action | None:
    with transaction.atomic():
        # Lock order: the call before its action, as ingest does.
        call_id = (
            Action.objects.filter(pk=action_id)
            .values_list("call_id", flat=True)
            .first()
        )
        call = None
        if call_id is not None:
            call = Call.objects.select_for_update(no_key=True).get(pk=call_id)
        action = (
            Action.objects.select_for_update(no_key=True).filter(pk=action_id).first()
        )
        if action is None or not can_move_action(action.status, status):
            return None
        change(action)
        action.claimed_until = None
        action.save()
        if action.call_id is not None:
            if call is None or call.pk != action.call_id:
                call = Call.objects.select_for_update(no_key=True).get(
                    pk=action.call_id
                )
            live.publish_on_commit([_bump(call, [action])])
    return action


def _bump(call: Call, actions: list[Action]) -> live.CallDelta:
    """Advance the call's version for action changes; the delta to publish."""
    base = call.version
    Call.objects.filter(pk=call.pk).update(version=F("version") + 1)
    call.version = base + 1
    delta = live.CallDelta(
        call_id=call.pk,
        base_version=base,
        version=call.version,
        actions=[live.action_shape(a) for a in actions],
    )
    live.attach_board_changes(
        [delta],
        {call.pk: call},
        fresh=set(),
        roster_changed=set(),
        actions_changed={call.pk},
    )
    return delta


def _enqueue(action_id: int) -> None:
    from callbot.calls.tasks import perform_action

    try:
        perform_action.delay(action_id)
    except Exception:
        # The action is stored as queued; the sweep (``requeue_stale_actions``)
        # sends it again once the broker is back.
        logger.exception("could not enqueue action %s", action_id)


# --- the audit trail -----------------------------------------------------------------


def _audit(
    actor: Actor,
    action: str,
    target: str,
    call: Call | None,
    outcome: str,
    detail: dict[str, Any],
    client_ip: str | None,
    *,
    actor_name: str | None = None,
) -> None:
    user = actor if isinstance(actor, User) else None
    AuditEntry.objects.create(
        actor=user,
        actor_name=actor_name
        or (user.get_username() if user is not None else BOT_NAME)[:150],
        action=action[:64],
        target=target[:255],
        call=call,
        outcome=outcome[:32],
        detail=detail,
        client_ip=client_ip,
    )


def _audit_refusal(
    actor: Actor,
    kind: str,
    call_pk: int | None,
    participant_id: str,
    refused: ActionRefusedError,
    client_ip: str | None,
) -> None:
    call = Call.objects.filter(pk=call_pk).first() if call_pk is not None else None
    name = None
    if actor is not None and not isinstance(actor, User):
        name = "anonymous"
    _audit(
        actor,
        str(kind)[:64],
        participant_id,
        call,
        "refused",
        {"code": refused.code, "message": refused.message},
        client_ip,
        actor_name=name,
    )


# --- calls Callbot created or lost ---------------------------------------------------


def store_created_call(resource: Any, **fields: Any) -> Call:
    """The Call row for a call Graph just created for us (place, join).

    The first notification may have beaten this answer and created the row already
    (ingest keys calls by the normalised id), so this gets or creates, then fills in
    what only the request knew: kind, targets, subject, meeting.
    """
    from callbot.graph.resources import normalise_id

    key = normalise_id(resource.id)[:64]
    with transaction.atomic():
        call, created = Call.objects.select_for_update(no_key=True).get_or_create(
            graph_key=key,
            defaults={
                "graph_id": resource.id[:64],
                "direction": "outgoing",
                "state": CallState.ESTABLISHING,
                "tenant_id": (resource.tenant_id or "")[:64],
                "my_participant_id": (resource.my_participant_id or "")[:64],
                "callback_uri": resource.callback_uri or "",
            },
        )
        changed: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "meeting":
                name, value = "meeting_id", value.pk
            if value not in (None, "", []) and getattr(call, name) != value:
                setattr(call, name, value)
                changed[name] = value
        if call.direction != "outgoing":
            call.direction = "outgoing"
            changed["direction"] = "outgoing"
        if changed or created:
            base = call.version
            call.version = base + 1
            call.save()
            delta = live.CallDelta(
                call_id=call.pk,
                base_version=base,
                version=call.version,
                call={
                    k: v for k, v in changed.items() if isinstance(v, str | int | list)
                }
                | {"state": call.state, "direction": call.direction},
            )
            live.attach_board_changes(
                [delta],
                {call.pk: call},
                fresh={call.pk} if created else set(),
                roster_changed=set(),
                actions_changed=set(),
            )
            live.publish_on_commit([delta])
    return call


def store_online_meeting(
    resource: Any, *, starts_at: datetime, ends_at: datetime
) -> Meeting:
    """Keep a meeting Graph created, with the coordinates needed to join it."""
    chat = resource.chat_info or {}
    thread_id = str(chat.get("threadId") or "")[:255]
    values = {
        "subject": resource.subject[:255],
        "join_web_url": resource.join_web_url,
        "message_id": str(chat.get("messageId") or "0")[:64],
        "reply_chain_message_id": str(chat.get("replyChainMessageId") or "")[:64],
        "organizer_id": (resource.organizer_id or "")[:64],
        "tenant_id": (resource.organizer_tenant_id or settings.GRAPH_TENANT_ID)[:64],
        "online_meeting_id": resource.id[:255],
        "join_meeting_id": (resource.join_meeting_id or "")[:32],
        "passcode": (resource.passcode or "")[:64],
        "starts_at": starts_at,
        "ends_at": ends_at,
    }
    if thread_id:
        meeting, _ = Meeting.objects.update_or_create(
            thread_id=thread_id, defaults=values
        )
        return meeting
    return Meeting.objects.create(**values)


def note_keep_alive(call_id: int, at: datetime | None = None) -> None:
    """Graph confirmed a keepAlive for the call."""
    Call.objects.filter(pk=call_id).update(last_keep_alive_at=at or timezone.now())


def close_lost_call(call_id: int) -> None:
    """Graph no longer knows the call: end it here, and everyone in it.

    For calls whose ending notification was lost (reconciliation found a 404).
    """
    from callbot.calls.ingest import end_call_locally

    end_call_locally(call_id, "Graph no longer knows this call.")


def note_call_alive(call_id: int) -> None:
    """A silent call is still alive at Graph: note that we checked, so it is not
    asked about again until it falls silent anew."""
    Call.objects.filter(pk=call_id).update(last_notification_at=timezone.now())


def has_recording(action_id: int) -> bool:
    return Recording.objects.filter(action_id=action_id).exists()


def store_recording(action_id: int, audio: bytes) -> Recording | None:
    """Keep a recording's audio once per action; returns None if already kept."""
    from django.core.files.base import ContentFile
    from django.db import IntegrityError

    action = Action.objects.get(pk=action_id)
    recording = Recording(action=action, call_id=action.call_id, size=len(audio))
    try:
        with transaction.atomic():
            recording.audio.save(
                f"action-{action_id}.wav", ContentFile(audio), save=True
            )
    except IntegrityError:
        return None  # a redelivered task lost the race; the first copy stands
    return recording
