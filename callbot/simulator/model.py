"""The emulator's world: calls (bot legs), conversations, participants, meetings.

A ``Conversation`` is what the humans are in: a peer-to-peer call, an ad-hoc group call
or a meeting's group call. Each bot leg is a ``Call`` attached to one conversation; the
bot's own participant sits in the conversation's roster like anybody else's. Roster
changes are made on the conversation and reported on every established bot leg in it.

The ``*_json`` methods render Graph resources (contract §2-§4) and always emit
``@odata.type``, as the contract asks of an emulator.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

ConversationKind = Literal["p2p", "group", "meeting"]


def new_id() -> str:
    """A GUID-shaped opaque id (contract conventions)."""
    return str(uuid.uuid4())


def odata(type_name: str, **fields: Any) -> dict[str, Any]:
    """A JSON object with ``@odata.type`` ``#microsoft.graph.<type_name>`` first."""
    return {"@odata.type": f"#microsoft.graph.{type_name}", **fields}


def identity_set(
    kind: str, ident: str, display_name: str | None, tenant_id: str | None
) -> dict[str, Any]:
    """An identitySet with exactly one member (``user``, ``phone``, ``application``...)."""
    member: dict[str, Any] = odata("identity", id=ident)
    if display_name is not None:
        member["displayName"] = display_name
    if tenant_id is not None and kind in ("user", "application", "applicationInstance"):
        member["tenantId"] = tenant_id
    if kind == "user":
        member["identityProvider"] = "AAD"
    return {"@odata.type": "#microsoft.graph.identitySet", kind: member}


def result_info(code: int, subcode: int, message: str) -> dict[str, Any]:
    return odata("resultInfo", code=code, subcode=subcode, message=message)


@dataclass(eq=False)
class Participant:
    """Somebody (or a bot leg) in a conversation's roster (contract §4)."""

    id: str
    identity: dict[str, Any]
    is_bot_leg: bool = False
    muted: bool = False
    in_lobby: bool = False
    sharing: bool = False
    on_hold: bool = False
    recording_status: str | None = None
    region: str = "amer"
    language: str = "en-US"
    source_base: int = 1
    _cache: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def display_name(self) -> str:
        for member in self.identity.values():
            if isinstance(member, dict):
                return str(member.get("displayName") or member.get("id") or "")
        return ""

    def touch(self) -> None:
        """Forget the rendered JSON after a change."""
        self._cache = None

    def info_json(self) -> dict[str, Any]:
        return odata(
            "participantInfo",
            identity=self.identity,
            endpointType="default",
            region=self.region,
            languageId=self.language,
            participantId=self.id,
        )

    def to_json(self) -> dict[str, Any]:
        """The participant resource; cached until ``touch`` (rosters re-render often)."""
        if self._cache is None:
            streams = [
                odata(
                    "mediaStream",
                    mediaType="audio",
                    label="main-audio",
                    sourceId=str(self.source_base),
                    direction="sendReceive",
                    serverMuted=self.muted and self.is_bot_leg,
                )
            ]
            if self.sharing:
                streams.append(
                    odata(
                        "mediaStream",
                        mediaType="videoBasedScreenSharing",
                        label="applicationsharing-video",
                        sourceId=str(self.source_base + 1),
                        direction="sendOnly",
                        serverMuted=False,
                    )
                )
            data = odata(
                "participant",
                id=self.id,
                info=self.info_json(),
                isMuted=self.muted,
                isInLobby=self.in_lobby,
                mediaStreams=streams,
                metadata=None,
            )
            if self.recording_status is not None:
                data["recordingInfo"] = odata(
                    "recordingInfo", recordingStatus=self.recording_status
                )
            self._cache = data
        return self._cache


@dataclass(eq=False)
class Conversation:
    """The thing humans are in; bot legs attach to it."""

    id: str
    kind: ConversationKind
    chain_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    call_ids: list[str] = field(default_factory=list)
    chat_info: dict[str, Any] | None = None
    meeting_id: str | None = None
    next_source: int = 1

    def allocate_sources(self) -> int:
        """Media source ids (MSIs) are unique within a conversation."""
        base = self.next_source
        self.next_source += 10
        return base

    def humans(self) -> list[Participant]:
        return [p for p in self.participants.values() if not p.is_bot_leg]


@dataclass(eq=False)
class Operation:
    """A ``commsOperation`` (contract §5) and, for media ones, its queue state."""

    id: str
    type_name: str
    call_id: str
    client_context: str | None
    status: str = "running"
    result: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Media-queue bookkeeping (media.py).
    seconds: float = 0.0
    cancelled: bool = False
    done: asyncio.Event | None = None
    stop_tones: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        data = odata(
            self.type_name,
            id=self.id,
            status=self.status,
            clientContext=self.client_context,
            resultInfo=self.result,
        )
        data.update(self.extra)
        return data


@dataclass(eq=False)
class Call:
    """One bot leg: the ``call`` resource plus what the emulator tracks about it."""

    id: str
    direction: str
    state: str
    callback_uri: str
    tenant_id: str
    conversation: Conversation
    my_participant_id: str
    source: dict[str, Any]
    targets: list[dict[str, Any]]
    requested_modalities: list[str]
    media_config: dict[str, Any] | None = None
    chat_info: dict[str, Any] | None = None
    meeting_info: dict[str, Any] | None = None
    subject: str | None = None
    call_options: dict[str, Any] | None = None
    result_info: dict[str, Any] | None = None
    tone_info: dict[str, Any] | None = None
    media_active: bool = False
    delta_roster: bool = False
    roster_sequence: int = 0
    roster_marks: dict[str, int] = field(default_factory=dict)
    tone_subscribed: bool = False
    tone_sequence: int = 0
    operations: dict[str, Operation] = field(default_factory=dict)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    peer_id: str | None = None
    created_at: float = 0.0
    ended_at: float | None = None
    roster_started: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ended(self) -> bool:
        return self.state == "terminated"

    @property
    def kind(self) -> ConversationKind:
        return self.conversation.kind

    @property
    def service_hosted(self) -> bool:
        return bool(self.media_config) and str(
            (self.media_config or {}).get("@odata.type", "")
        ).lower().endswith("servicehostedmediaconfig")

    @property
    def app_hosted(self) -> bool:
        return (
            str((self.media_config or {}).get("@odata.type", ""))
            .lower()
            .endswith("apphostedmediaconfig")
        )

    def bump(self) -> None:
        """Wake whoever waits on this call (the scenario driver)."""
        self.changed.set()
        self.changed = asyncio.Event()

    def path(self) -> str:
        return f"/communications/calls/{self.id}"

    def to_json(self) -> dict[str, Any]:
        """The full call resource as ``GET /communications/calls/{id}`` returns it."""
        return {
            "@odata.type": "#microsoft.graph.call",
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#app/calls/$entity",
            "id": self.id,
            "state": self.state,
            "direction": self.direction,
            "callbackUri": self.callback_uri,
            "callChainId": self.conversation.chain_id,
            "source": self.source,
            "targets": self.targets,
            "requestedModalities": self.requested_modalities,
            "activeModalities": self.requested_modalities
            if self.state == "established"
            else [],
            "mediaConfig": self.media_config,
            "chatInfo": self.chat_info,
            "meetingInfo": self.meeting_info,
            "tenantId": self.tenant_id,
            "myParticipantId": self.my_participant_id,
            "subject": self.subject,
            "callOptions": self.call_options,
            "mediaState": self.media_state_json(),
            "resultInfo": self.result_info,
            "toneInfo": self.tone_info,
            "callRoutes": [],
            "routingPolicies": [],
            "incomingContext": None,
            "transcription": None,
        }

    def media_state_json(self) -> dict[str, Any] | None:
        if not self.media_active:
            return None
        return odata("callMediaState", audio="active")


@dataclass(eq=False)
class Meeting:
    """An online meeting (contract §10) and the group call live in it, if any."""

    id: str
    subject: str
    organizer_id: str
    organizer_name: str
    tenant_id: str
    thread_id: str
    join_web_url: str
    join_meeting_id: str
    passcode: str | None
    start: str
    end: str
    created: str
    attendees: list[dict[str, Any]] = field(default_factory=list)
    # The creator's own key, for meetings made by ``createOrGet`` (§10.2).
    external_id: str | None = None
    conversation: Conversation | None = None

    def chat_info(self) -> dict[str, Any]:
        return odata(
            "chatInfo", threadId=self.thread_id, messageId="0", replyChainMessageId=None
        )

    def organizer_identity(self) -> dict[str, Any]:
        return identity_set(
            "user", self.organizer_id, self.organizer_name, self.tenant_id
        )

    def organizer_meeting_info(self) -> dict[str, Any]:
        return odata(
            "organizerMeetingInfo",
            organizer=self.organizer_identity(),
            allowConversationWithoutHost=True,
        )

    def to_json(self) -> dict[str, Any]:
        """The onlineMeeting resource (contract §10.1)."""
        return {
            "@odata.type": "#microsoft.graph.onlineMeeting",
            "id": self.id,
            "creationDateTime": self.created,
            "startDateTime": self.start,
            "endDateTime": self.end,
            "subject": self.subject,
            "joinWebUrl": self.join_web_url,
            "chatInfo": self.chat_info(),
            "joinMeetingIdSettings": {
                "isPasscodeRequired": self.passcode is not None,
                "joinMeetingId": self.join_meeting_id,
                "passcode": self.passcode,
            },
            "participants": {
                "organizer": {
                    "upn": None,
                    "role": "presenter",
                    "identity": self.organizer_identity(),
                },
                "attendees": self.attendees,
            },
            "audioConferencing": None,
            "lobbyBypassSettings": {
                "scope": "organization",
                "isDialInBypassEnabled": False,
            },
            "allowedPresenters": "everyone",
            "isEntryExitAnnounced": True,
            "videoTeleconferenceId": None,
            "externalId": self.external_id,
        }
