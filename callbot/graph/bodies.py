"""Request bodies for the Graph calls API, built and validated before any HTTP.

Each builder returns the JSON the contract (§6) documents for one action, with
``@odata.type`` on every polymorphic member (``mediaConfig``, ``meetingInfo``, prompts,
``callOptions``, identity sets) because for ``mediaConfig`` it is the only thing telling
the subtypes apart (§2.4). Limits the contract states (§12) are checked here and
broken ones raise ``ValueError`` naming the limit, so a bad request never leaves the
process.

Pure functions and small dataclasses: nothing here does I/O or imports Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from callbot.graph.limits import (
    ACCEPTED_MODALITIES,
    DTMF_TONES,
    MAX_CLIENT_CONTEXT,
    MAX_GROUP_CALL_TARGETS,
    MAX_INVITEES,
    MAX_PROMPTS,
    MAX_REDIRECT_TARGETS,
    MODALITIES,
    RECORD_TIMER_RANGE,
    RECORDING_STATUSES,
    REDIRECT_TIMEOUT_RANGE,
    REJECT_REASONS,
    SCREEN_SHARING_ROLES,
    STOP_TONE_CHARS,
)
from callbot.graph.resources import IDENTITY_KINDS, Identity, JsonDict

GRAPH = "#microsoft.graph."


@dataclass(frozen=True)
class MediaInfo:
    """A prompt: an HTTP(S) URL of a WAV file (mono, 16-bit, 16 kHz) and an optional
    ``resource_id`` the service caches it under (contract §2.4)."""

    uri: str
    resource_id: str | None = None

    def to_json(self) -> JsonDict:
        """The ``mediaInfo`` object."""
        _check_url(self.uri, "media uri")
        body: JsonDict = {"@odata.type": GRAPH + "mediaInfo", "uri": self.uri}
        if self.resource_id:
            body["resourceId"] = self.resource_id
        return body


PromptLike = str | MediaInfo


@dataclass(frozen=True)
class CallOptions:
    """``outgoingCallOptions`` (create call) / ``incomingCallOptions`` (answer), §2.6.

    Fields left None are not sent, so the service applies its defaults.
    """

    hide_bot_after_escalation: bool | None = None
    is_content_sharing_notification_enabled: bool | None = None
    is_delta_roster_enabled: bool | None = None
    is_interactive_roster_enabled: bool | None = None

    def to_json(self, odata: str) -> JsonDict:
        """The options object typed as ``odata`` (``outgoingCallOptions``...)."""
        body: JsonDict = {"@odata.type": GRAPH + odata}
        for key, value in (
            ("hideBotAfterEscalation", self.hide_bot_after_escalation),
            (
                "isContentSharingNotificationEnabled",
                self.is_content_sharing_notification_enabled,
            ),
            ("isDeltaRosterEnabled", self.is_delta_roster_enabled),
            ("isInteractiveRosterEnabled", self.is_interactive_roster_enabled),
        ):
            if value is not None:
                body[key] = value
        return body


@dataclass(frozen=True)
class ChatInfo:
    """A meeting's chat coordinates (§2.5): ``messageId`` is ``"0"`` for regular
    meetings; ``reply_chain_message_id`` only for channel meetings."""

    thread_id: str
    message_id: str = "0"
    reply_chain_message_id: str | None = None

    def to_json(self) -> JsonDict:
        """The ``chatInfo`` object."""
        if not self.thread_id:
            raise ValueError("chatInfo.threadId is required")
        body: JsonDict = {
            "@odata.type": GRAPH + "chatInfo",
            "threadId": self.thread_id,
            "messageId": self.message_id,
        }
        if self.reply_chain_message_id:
            body["replyChainMessageId"] = self.reply_chain_message_id
        return body


@dataclass(frozen=True)
class OrganizerMeetingInfo:
    """``organizerMeetingInfo``: who organises the meeting to join (with chatInfo)."""

    organizer: Identity
    allow_conversation_without_host: bool | None = None

    def to_json(self) -> JsonDict:
        """The ``meetingInfo`` object."""
        body: JsonDict = {
            "@odata.type": GRAPH + "organizerMeetingInfo",
            "organizer": identity_set(self.organizer),
        }
        if self.allow_conversation_without_host is not None:
            body["allowConversationWithoutHost"] = self.allow_conversation_without_host
        return body


@dataclass(frozen=True)
class TokenMeetingInfo:
    """``tokenMeetingInfo``: received on meeting invites; reused to rejoin."""

    token: str

    def to_json(self) -> JsonDict:
        """The ``meetingInfo`` object."""
        if not self.token:
            raise ValueError("tokenMeetingInfo.token is required")
        return {"@odata.type": GRAPH + "tokenMeetingInfo", "token": self.token}


MeetingInfoLike = OrganizerMeetingInfo | TokenMeetingInfo | Mapping[str, Any]
ChatInfoLike = ChatInfo | Mapping[str, Any]
TargetLike = Identity | Mapping[str, Any]


# --- validation ---------------------------------------------------------------------


def check_id(value: str, what: str) -> str:
    """A non-empty opaque id (call, participant, user); ids are never parsed."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is required")
    return value


def check_client_context(value: str | None) -> str | None:
    """``clientContext`` is at most 256 characters (§5, §12)."""
    if value is not None and len(value) > MAX_CLIENT_CONTEXT:
        raise ValueError(
            f"clientContext is {len(value)} characters; Graph allows at most "
            f"{MAX_CLIENT_CONTEXT}"
        )
    return value


def _check_url(value: str, what: str) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, not {value!r}")
    return value


def _check_range(value: int, bounds: tuple[int, int], what: str) -> int:
    low, high = bounds
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise ValueError(
            f"{what} must be an integer from {low} to {high}, not {value!r}"
        )
    return value


def _modalities(values: Iterable[str], allowed: frozenset[str], what: str) -> list[str]:
    result = list(values)
    if not result:
        raise ValueError(f"{what} must name at least one modality")
    unknown = [m for m in result if m not in allowed]
    if unknown:
        raise ValueError(
            f"{what}: unknown modality {unknown[0]!r}; use {sorted(allowed)}"
        )
    return result


def _with_context(body: JsonDict, client_context: str | None) -> JsonDict:
    if check_client_context(client_context) is not None:
        body["clientContext"] = client_context
    return body


# --- shared pieces ------------------------------------------------------------------


def identity_set(identity: Identity) -> JsonDict:
    """The ``identitySet`` for one identity (user, application, phone, ...)."""
    if identity.kind not in {kind for _, kind in IDENTITY_KINDS}:
        raise ValueError(f"cannot address an identity of kind {identity.kind!r}")
    check_id(identity.id, f"{identity.kind} identity id")
    return identity.to_identity_set()


def participant_info(identity: Identity, participant_id: str | None = None) -> JsonDict:
    """A ``participantInfo`` (call source, transferee)."""
    body: JsonDict = {
        "@odata.type": GRAPH + "participantInfo",
        "identity": identity_set(identity),
    }
    if participant_id:
        body["participantId"] = participant_id
    return body


def invitation(target: TargetLike, *, replaces_call_id: str | None = None) -> JsonDict:
    """An ``invitationParticipantInfo`` from an identity or a prepared dict.

    A dict is sent as given (``@odata.type`` added when missing) and must hold
    ``identity``.
    """
    if isinstance(target, Identity):
        body: JsonDict = {
            "@odata.type": GRAPH + "invitationParticipantInfo",
            "identity": identity_set(target),
        }
    else:
        if not isinstance(target.get("identity"), Mapping):
            raise ValueError("an invitation target needs an identity object")
        body = {"@odata.type": GRAPH + "invitationParticipantInfo", **target}
    if replaces_call_id:
        body["replacesCallId"] = replaces_call_id
    return body


def media_prompt(prompt: PromptLike) -> JsonDict:
    """A ``mediaPrompt`` for a URL or a ``MediaInfo``."""
    info = prompt if isinstance(prompt, MediaInfo) else MediaInfo(prompt)
    return {"@odata.type": GRAPH + "mediaPrompt", "mediaInfo": info.to_json()}


def service_hosted_media_config(prefetch: Iterable[PromptLike] = ()) -> JsonDict:
    """``serviceHostedMediaConfig``; ``prefetch`` lists prompts the service should
    cache ahead of ``playPrompt``. Required for every IVR action (§2.4)."""
    body: JsonDict = {"@odata.type": GRAPH + "serviceHostedMediaConfig"}
    infos = [p if isinstance(p, MediaInfo) else MediaInfo(p) for p in prefetch]
    if infos:
        body["preFetchMedia"] = [i.to_json() for i in infos]
    return body


def app_hosted_media_config(blob: str) -> JsonDict:
    """``appHostedMediaConfig`` with the media SDK's opaque ``blob``."""
    if not blob:
        raise ValueError("appHostedMediaConfig needs a blob")
    return {"@odata.type": GRAPH + "appHostedMediaConfig", "blob": blob}


def _media_config(
    media_config: Mapping[str, Any] | None, prefetch: Sequence[PromptLike]
) -> JsonDict:
    if media_config is None:
        return service_hosted_media_config(prefetch)
    if prefetch:
        raise ValueError("pass prompts_to_prefetch or media_config, not both")
    if not str(media_config.get("@odata.type", "")).endswith("MediaConfig"):
        raise ValueError(
            "media_config must carry its @odata.type "
            "(#microsoft.graph.serviceHostedMediaConfig or appHostedMediaConfig)"
        )
    return dict(media_config)


def _chat_info(value: ChatInfoLike) -> JsonDict:
    if isinstance(value, ChatInfo):
        return value.to_json()
    if not value.get("threadId"):
        raise ValueError("chatInfo.threadId is required")
    return {"@odata.type": GRAPH + "chatInfo", **value}


def _meeting_info(value: MeetingInfoLike) -> JsonDict:
    if isinstance(value, OrganizerMeetingInfo | TokenMeetingInfo):
        return value.to_json()
    body = dict(value)
    if "@odata.type" not in body:
        # Stored meetingInfo from a notification may have lost its type; infer it
        # from the members, since the service needs it to pick the subtype.
        if "organizer" in body:
            body["@odata.type"] = GRAPH + "organizerMeetingInfo"
        elif "token" in body:
            body["@odata.type"] = GRAPH + "tokenMeetingInfo"
        elif "joinMeetingId" in body:
            body["@odata.type"] = GRAPH + "joinMeetingIdMeetingInfo"
        else:
            raise ValueError("meetingInfo needs an @odata.type")
    return body


# --- create call (§6.2) -------------------------------------------------------------


def _call_body(
    *,
    callback_uri: str,
    tenant_id: str | None,
    modalities: Sequence[str],
    prompts_to_prefetch: Sequence[PromptLike],
    media_config: Mapping[str, Any] | None,
    call_options: CallOptions | None,
    source: Identity | None,
) -> JsonDict:
    body: JsonDict = {
        "@odata.type": GRAPH + "call",
        "callbackUri": _check_url(callback_uri, "callback_uri"),
        "requestedModalities": _modalities(modalities, MODALITIES, "modalities"),
        "mediaConfig": _media_config(media_config, prompts_to_prefetch),
    }
    if source is not None:
        body["source"] = participant_info(source)
    if call_options is not None:
        body["callOptions"] = call_options.to_json("outgoingCallOptions")
    if tenant_id:
        body["tenantId"] = tenant_id
    return body


def peer_to_peer_call(
    target: TargetLike,
    *,
    callback_uri: str,
    tenant_id: str | None = None,
    modalities: Sequence[str] = ("audio",),
    prompts_to_prefetch: Sequence[PromptLike] = (),
    media_config: Mapping[str, Any] | None = None,
    call_options: CallOptions | None = None,
    source: Identity | None = None,
) -> JsonDict:
    """Body of a P2P call to one user, application instance or phone number."""
    body = _call_body(
        callback_uri=callback_uri,
        tenant_id=tenant_id,
        modalities=modalities,
        prompts_to_prefetch=prompts_to_prefetch,
        media_config=media_config,
        call_options=call_options,
        source=source,
    )
    body["targets"] = [invitation(target)]
    return body


def group_call(
    targets: Sequence[TargetLike],
    *,
    callback_uri: str,
    subject: str | None = None,
    tenant_id: str | None = None,
    modalities: Sequence[str] = ("audio",),
    prompts_to_prefetch: Sequence[PromptLike] = (),
    media_config: Mapping[str, Any] | None = None,
    call_options: CallOptions | None = None,
    source: Identity | None = None,
) -> JsonDict:
    """Body of an ad-hoc group call: 2-5 targets (§6.2, §12)."""
    if not 2 <= len(targets) <= MAX_GROUP_CALL_TARGETS:
        raise ValueError(
            f"a group call needs 2 to {MAX_GROUP_CALL_TARGETS} targets, "
            f"not {len(targets)}"
        )
    body = _call_body(
        callback_uri=callback_uri,
        tenant_id=tenant_id,
        modalities=modalities,
        prompts_to_prefetch=prompts_to_prefetch,
        media_config=media_config,
        call_options=call_options,
        source=source,
    )
    body["targets"] = [invitation(t) for t in targets]
    if subject:
        body["subject"] = subject
    return body


def meeting_join(
    meeting_info: MeetingInfoLike,
    *,
    chat_info: ChatInfoLike | None,
    callback_uri: str,
    tenant_id: str,
    modalities: Sequence[str] = ("audio",),
    prompts_to_prefetch: Sequence[PromptLike] = (),
    media_config: Mapping[str, Any] | None = None,
    call_options: CallOptions | None = None,
    source: Identity | None = None,
) -> JsonDict:
    """Body joining a meeting: ``chatInfo`` + ``meetingInfo`` (or ``meetingInfo`` alone
    for join-by-id and token rejoin), no targets, with ``tenantId`` (§6.2)."""
    check_id(tenant_id, "tenant_id")
    body = _call_body(
        callback_uri=callback_uri,
        tenant_id=tenant_id,
        modalities=modalities,
        prompts_to_prefetch=prompts_to_prefetch,
        media_config=media_config,
        call_options=call_options,
        source=source,
    )
    if chat_info is not None:
        body["chatInfo"] = _chat_info(chat_info)
    body["meetingInfo"] = _meeting_info(meeting_info)
    return body


def join_meeting_id_info(join_meeting_id: str, passcode: str | None) -> JsonDict:
    """``joinMeetingIdMeetingInfo``; ``passcode`` is sent as null when not required."""
    check_id(join_meeting_id, "join_meeting_id")
    return {
        "@odata.type": GRAPH + "joinMeetingIdMeetingInfo",
        "joinMeetingId": join_meeting_id,
        "passcode": passcode or None,
    }


# --- incoming call handling (§6.4-6.7) ------------------------------------------------


def answer(
    *,
    callback_uri: str | None,
    accepted_modalities: Sequence[str],
    media_config: Mapping[str, Any] | None,
    prompts_to_prefetch: Sequence[PromptLike],
    call_options: CallOptions | None,
    participant_capacity: int | None,
) -> JsonDict:
    """Body of ``answer`` (§6.4)."""
    body: JsonDict = {}
    if callback_uri is not None:
        body["callbackUri"] = _check_url(callback_uri, "callback_uri")
    body["acceptedModalities"] = _modalities(
        accepted_modalities, ACCEPTED_MODALITIES, "accepted_modalities"
    )
    body["mediaConfig"] = _media_config(media_config, prompts_to_prefetch)
    if call_options is not None:
        body["callOptions"] = call_options.to_json("incomingCallOptions")
    if participant_capacity is not None:
        if isinstance(participant_capacity, bool) or participant_capacity < 1:
            raise ValueError("participant_capacity must be a positive integer")
        body["participantCapacity"] = participant_capacity
    return body


def reject(reason: str, callback_uri: str | None) -> JsonDict:
    """Body of ``reject``: reason ``none``, ``busy`` or ``forbidden`` (§6.5)."""
    normalised = reason.lower()
    if normalised not in REJECT_REASONS:
        raise ValueError(f"reject reason must be one of {sorted(REJECT_REASONS)}")
    body: JsonDict = {"reason": normalised}
    if callback_uri is not None:
        body["callbackUri"] = _check_url(callback_uri, "callback_uri")
    return body


def redirect(
    targets: Sequence[TargetLike], timeout: int | None, callback_uri: str | None
) -> JsonDict:
    """Body of ``redirect``: 1-25 targets ring at once, timeout 15-90 s (§6.6)."""
    if not 1 <= len(targets) <= MAX_REDIRECT_TARGETS:
        raise ValueError(
            f"redirect takes 1 to {MAX_REDIRECT_TARGETS} targets, not {len(targets)}"
        )
    body: JsonDict = {"targets": [invitation(t) for t in targets]}
    if timeout is not None:
        body["timeout"] = _check_range(timeout, REDIRECT_TIMEOUT_RANGE, "timeout")
    if callback_uri is not None:
        body["callbackUri"] = _check_url(callback_uri, "callback_uri")
    return body


def transfer(
    transfer_target: TargetLike,
    *,
    replaces_call_id: str | None,
    transferee: Identity | Mapping[str, Any] | None,
    transferee_participant_id: str | None,
    client_context: str | None,
) -> JsonDict:
    """Body of ``transfer`` (§6.7). ``replaces_call_id`` makes it consultative;
    ``transferee`` is required when transferring out of a group call."""
    body: JsonDict = {
        "transferTarget": invitation(transfer_target, replaces_call_id=replaces_call_id)
    }
    if isinstance(transferee, Identity):
        body["transferee"] = participant_info(transferee, transferee_participant_id)
    elif transferee is not None:
        if not isinstance(transferee.get("identity"), Mapping):
            raise ValueError("transferee needs an identity object")
        body["transferee"] = {"@odata.type": GRAPH + "participantInfo", **transferee}
    elif transferee_participant_id:
        raise ValueError("transferee_participant_id needs a transferee identity")
    return _with_context(body, client_context)


# --- media and call control (§6.8-6.15) ---------------------------------------------


def client_context_only(client_context: str | None) -> JsonDict:
    """``{"clientContext": ...}``: mute, unmute, cancelMediaProcessing,
    subscribeToTone, participant mute, stopHoldMusic."""
    return _with_context({}, client_context)


def play_prompt(prompts: Sequence[PromptLike], client_context: str | None) -> JsonDict:
    """Body of ``playPrompt``: 1-20 prompts (§6.9)."""
    if not 1 <= len(prompts) <= MAX_PROMPTS:
        raise ValueError(
            f"playPrompt takes 1 to {MAX_PROMPTS} prompts, not {len(prompts)}"
        )
    return _with_context(
        {"prompts": [media_prompt(p) for p in prompts]}, client_context
    )


def record_response(
    *,
    prompt: PromptLike | None,
    barge_in_allowed: bool,
    initial_silence_timeout: int,
    max_silence_timeout: int,
    max_record_duration: int,
    play_beep: bool,
    stop_tones: Sequence[str],
    client_context: str | None,
) -> JsonDict:
    """Body of ``recordResponse`` (§6.10): at most one prompt, timers 1-120 s,
    ``stopTones`` as DTMF characters (``#``, ``*``, ``0``-``9``, ``A``-``D``)."""
    bad = [
        t
        for t in stop_tones
        if not isinstance(t, str) or t.upper() not in STOP_TONE_CHARS
    ]
    if bad:
        raise ValueError(
            f"stop tone {bad[0]!r} is not a DTMF character (0-9, *, #, A-D)"
        )
    body: JsonDict = {
        "prompts": [] if prompt is None else [media_prompt(prompt)],
        "bargeInAllowed": bool(barge_in_allowed),
        "initialSilenceTimeoutInSeconds": _check_range(
            initial_silence_timeout, RECORD_TIMER_RANGE, "initial_silence_timeout"
        ),
        "maxSilenceTimeoutInSeconds": _check_range(
            max_silence_timeout, RECORD_TIMER_RANGE, "max_silence_timeout"
        ),
        "maxRecordDurationInSeconds": _check_range(
            max_record_duration, RECORD_TIMER_RANGE, "max_record_duration"
        ),
        "playBeep": bool(play_beep),
        "stopTones": [t.upper() for t in stop_tones],
    }
    return _with_context(body, client_context)


def send_dtmf_tones(
    tones: Sequence[str], delay_between_tones_ms: int | None, client_context: str | None
) -> JsonDict:
    """Body of ``sendDtmfTones`` (§6.13): toneInfo names ``tone0``-``tone9``,
    ``star``, ``pound``, ``a``-``d``, ``flash``."""
    if not tones:
        raise ValueError("send at least one tone")
    bad = [t for t in tones if t not in DTMF_TONES]
    if bad:
        raise ValueError(
            f"{bad[0]!r} is not a DTMF tone name (tone0-tone9, star, pound, a-d, flash)"
        )
    body: JsonDict = {"tones": list(tones)}
    if delay_between_tones_ms is not None:
        if isinstance(delay_between_tones_ms, bool) or delay_between_tones_ms < 0:
            raise ValueError("delay_between_tones_ms must be a non-negative integer")
        body["delayBetweenTonesMs"] = delay_between_tones_ms
    return _with_context(body, client_context)


def change_screen_sharing_role(role: str) -> JsonDict:
    """Body of ``changeScreenSharingRole``: ``viewer`` or ``sharer`` (§6.14)."""
    normalised = role.lower()
    if normalised not in SCREEN_SHARING_ROLES:
        raise ValueError("role must be 'viewer' or 'sharer'")
    return {"role": normalised}


def update_recording_status(status: str, client_context: str | None) -> JsonDict:
    """Body of ``updateRecordingStatus``: notRecording, recording, failed (§6.15)."""
    by_lower = {s.lower(): s for s in RECORDING_STATUSES}
    normalised = by_lower.get(status.replace("_", "").lower())
    if normalised is None:
        raise ValueError(f"recording status must be one of {list(RECORDING_STATUSES)}")
    return _with_context({"status": normalised}, client_context)


# --- participants (§6.16) -----------------------------------------------------------


def invite_participants(
    participants: Sequence[TargetLike],
    replaces_call_id: str | None,
    client_context: str | None,
) -> JsonDict:
    """Body of ``participants/invite``: 1-5 invitees; with ``replaces_call_id`` Graph
    reads only the first, so exactly one is allowed then."""
    if not 1 <= len(participants) <= MAX_INVITEES:
        raise ValueError(
            f"invite takes 1 to {MAX_INVITEES} participants, not {len(participants)}"
        )
    if replaces_call_id and len(participants) > 1:
        raise ValueError(
            "with replaces_call_id Graph reads only the first participant; "
            "invite the others in a separate request"
        )
    invitations = [
        invitation(p, replaces_call_id=replaces_call_id if i == 0 else None)
        for i, p in enumerate(participants)
    ]
    if any("replacesCallId" in inv for inv in invitations[1:]):
        raise ValueError("only the first invitee may carry replacesCallId")
    return _with_context({"participants": invitations}, client_context)


def start_hold_music(
    custom_prompt: PromptLike | None, client_context: str | None
) -> JsonDict:
    """Body of ``startHoldMusic``: optional custom prompt."""
    body: JsonDict = {}
    if custom_prompt is not None:
        body["customPrompt"] = media_prompt(custom_prompt)
    return _with_context(body, client_context)


# --- online meetings (§10.1) --------------------------------------------------------


def _graph_datetime(value: datetime, what: str) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.isoformat().replace("+00:00", "Z")


def online_meeting(
    *,
    subject: str,
    start: datetime,
    end: datetime,
    attendees: Sequence[Identity] = (),
    is_passcode_required: bool | None = None,
    lobby_bypass_scope: str | None = None,
    allowed_presenters: str | None = None,
) -> JsonDict:
    """Body of ``POST /users/{id}/onlineMeetings`` (§10.1)."""
    if end <= start:
        raise ValueError("the meeting must end after it starts")
    body: JsonDict = {
        "subject": subject,
        "startDateTime": _graph_datetime(start, "start"),
        "endDateTime": _graph_datetime(end, "end"),
    }
    if is_passcode_required is not None:
        body["joinMeetingIdSettings"] = {"isPasscodeRequired": is_passcode_required}
    if attendees:
        body["participants"] = {
            "attendees": [
                {"identity": identity_set(a), "role": "attendee"} for a in attendees
            ]
        }
    if lobby_bypass_scope is not None:
        body["lobbyBypassSettings"] = {"scope": lobby_bypass_scope}
    if allowed_presenters is not None:
        body["allowedPresenters"] = allowed_presenters
    return body


def online_meeting_create_or_get(
    *,
    external_id: str,
    subject: str,
    start: datetime,
    end: datetime,
    attendees: Sequence[Identity] = (),
) -> JsonDict:
    """Body of ``POST /users/{id}/onlineMeetings/createOrGet`` (§10.2): the fields
    that call takes (no passcode, lobby or presenter settings) and ``externalId``,
    the caller's key for the meeting."""
    if not external_id:
        raise ValueError("an externalId is required")
    body = online_meeting(subject=subject, start=start, end=end, attendees=attendees)
    body["externalId"] = external_id
    return body
