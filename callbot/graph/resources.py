"""Typed views of Graph's call, participant, operation and meeting resources.

Parsing is lenient, as the contract asks (§ conventions, §7.4): ``@odata.type`` may be
missing, enum values may be capitalised, numbers may arrive as strings, unknown
properties appear regularly. Every parsed object keeps the JSON it came from in
``raw`` so nothing the service sent is lost. A field Graph did not send is ``None``:
notifications are partial, and "absent" must not read as "false".

Nothing here imports Django.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonDict = dict[str, Any]

# Identity-set members in the order we prefer when more than one is present.
IDENTITY_KINDS: tuple[tuple[str, str], ...] = (
    ("user", "user"),
    ("applicationInstance", "application_instance"),
    ("application", "application"),
    ("phone", "phone"),
    ("guest", "guest"),
    ("azureCommunicationServicesUser", "acs_user"),
    ("acsUser", "acs_user"),
    ("onPremises", "on_premises"),
    ("encrypted", "encrypted"),
    ("device", "device"),
)


class ResourceFormatError(ValueError):
    """A resource is not the shape the contract describes (e.g. a string, not an object)."""


def normalise_id(value: str) -> str:
    """Graph ids compare case-insensitively with dashes removed (contract conventions)."""
    return value.replace("-", "").lower()


def odata_type(data: Mapping[str, Any]) -> str:
    """The short type name, ``"#microsoft.graph.call"`` → ``"call"``; ``""`` if absent."""
    value = data.get("@odata.type")
    if not isinstance(value, str):
        return ""
    return value.rsplit(".", 1)[-1]


def read_str(data: Mapping[str, Any], key: str) -> str | None:
    """A string property; a number or boolean as its text; None if absent."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise ResourceFormatError(f"{key} must be a string")


def _enum(data: Mapping[str, Any], key: str) -> str | None:
    """An enumeration member: Graph sends each as a string (a value Callbot does
    not know is kept as it came); a number or boolean there is malformed."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ResourceFormatError(f"{key} must be a string")
    return value.strip()


def _bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ResourceFormatError(f"{key} must be a boolean")


def read_int(value: Any, key: str, *, bits: int = 64) -> int | None:
    """A whole number that fits the contract's ``Int32``/``Int64`` (``bits``), from
    a number or a numeric string; past that range it would not fit our columns."""
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) <= 40:
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None:
        raise ResourceFormatError(f"{key} must be a number")
    limit = 1 << (bits - 1)
    if not -limit <= number < limit:
        raise ResourceFormatError(f"{key} {number} is out of the Int{bits} range")
    return number


def _obj(data: Mapping[str, Any], key: str) -> JsonDict | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ResourceFormatError(f"{key} must be an object")
    return value


def _list(data: Mapping[str, Any], key: str) -> list[Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ResourceFormatError(f"{key} must be an array")
    return value


def camel_to_snake(value: str) -> str:
    """``transferAccepted`` → ``transfer_accepted``; ``Established`` → ``established``."""
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch.isupper() and i > 0:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@dataclass(frozen=True)
class Identity:
    """Who someone is: one member of a communications identity set."""

    kind: str  # user, application, application_instance, phone, guest, acs_user, ...
    id: str
    display_name: str
    tenant_id: str

    @classmethod
    def unknown(cls) -> Identity:
        return cls(kind="unknown", id="", display_name="", tenant_id="")

    @classmethod
    def from_identity_set(cls, data: Mapping[str, Any] | None) -> Identity:
        if not data:
            return cls.unknown()
        for member, kind in IDENTITY_KINDS:
            value = data.get(member)
            if isinstance(value, dict):
                return cls(
                    kind=kind,
                    id=read_str(value, "id") or "",
                    display_name=read_str(value, "displayName") or "",
                    tenant_id=read_str(value, "tenantId") or "",
                )
        return cls.unknown()

    def to_identity_set(self) -> JsonDict:
        """The Graph request shape for this identity (reverse of ``from_identity_set``)."""
        member = next(m for m, k in IDENTITY_KINDS if k == self.kind)
        body: JsonDict = {"@odata.type": "#microsoft.graph.identity", "id": self.id}
        if self.display_name:
            body["displayName"] = self.display_name
        if self.tenant_id:
            body["tenantId"] = self.tenant_id
        return {"@odata.type": "#microsoft.graph.identitySet", member: body}


@dataclass(frozen=True)
class ResultInfo:
    code: int
    subcode: int
    message: str

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> ResultInfo | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ResourceFormatError("resultInfo must be an object")
        subcode = data.get("subcode", data.get("subCode"))
        return cls(
            code=read_int(data.get("code"), "resultInfo.code", bits=32) or 0,
            subcode=read_int(subcode, "resultInfo.subcode", bits=32) or 0,
            message=read_str(data, "message") or "",
        )

    @property
    def succeeded(self) -> bool:
        return self.code == 0 or 200 <= self.code < 300


@dataclass(frozen=True)
class ToneInfo:
    sequence_id: int
    tone: str

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> ToneInfo | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ResourceFormatError("toneInfo must be an object")
        tone = _enum(data, "tone")
        if tone is None:
            raise ResourceFormatError("toneInfo.tone is required")
        return cls(
            sequence_id=read_int(data.get("sequenceId"), "toneInfo.sequenceId") or 0,
            tone=tone[0].lower() + tone[1:] if tone else tone,
        )


@dataclass(frozen=True)
class MediaStream:
    media_type: str
    direction: str
    label: str
    source_id: str
    server_muted: bool

    @classmethod
    def parse(cls, data: Any) -> MediaStream:
        if not isinstance(data, dict):
            raise ResourceFormatError("mediaStreams entries must be objects")
        return cls(
            media_type=_enum(data, "mediaType") or "unknown",
            direction=_enum(data, "direction") or "inactive",
            label=read_str(data, "label") or "",
            source_id=read_str(data, "sourceId") or "",
            server_muted=bool(_bool(data, "serverMuted")),
        )

    @property
    def is_sending_screen(self) -> bool:
        return (
            self.media_type.lower() == "videobasedscreensharing"
            and self.direction.lower()
            in {
                "sendonly",
                "sendreceive",
            }
        )

    def to_json(self) -> JsonDict:
        return {
            "mediaType": self.media_type,
            "direction": self.direction,
            "label": self.label,
            "sourceId": self.source_id,
            "serverMuted": self.server_muted,
        }


@dataclass(frozen=True)
class ParticipantResource:
    """A roster entry. ``id`` may be None right after an invite (contract §4)."""

    id: str | None
    identity: Identity
    is_muted: bool | None
    is_in_lobby: bool | None
    media_streams: tuple[MediaStream, ...] | None
    roster_sequence_number: int | None
    removed_reason: str | None
    raw: JsonDict = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> ParticipantResource:
        if not isinstance(data, dict):
            raise ResourceFormatError("a participant must be an object")
        info = _obj(data, "info") or {}
        streams = _list(data, "mediaStreams")
        removed = _obj(data, "removedState")
        return cls(
            id=read_str(data, "id"),
            identity=Identity.from_identity_set(_obj(info, "identity")),
            is_muted=_bool(data, "isMuted"),
            is_in_lobby=_bool(data, "isInLobby"),
            media_streams=None
            if streams is None
            else tuple(MediaStream.parse(s) for s in streams),
            roster_sequence_number=read_int(
                data.get("rosterSequenceNumber"), "rosterSequenceNumber"
            ),
            removed_reason=None
            if removed is None
            else (read_str(removed, "reason") or "removed"),
            raw=data,
        )

    @property
    def is_sharing_screen(self) -> bool | None:
        if self.media_streams is None:
            return None
        return any(s.is_sending_screen for s in self.media_streams)


def _check_meeting_coordinates(
    chat: Mapping[str, Any] | None, meeting: Mapping[str, Any] | None
) -> None:
    """The coordinates read out of ``chatInfo`` and ``meetingInfo`` (contract §2.5)
    must be scalars and objects where the contract has them, so a call is never
    half-read; anything else there stays unread."""
    for key in ("threadId", "messageId", "replyChainMessageId"):
        if chat is not None:
            read_str(chat, key)
    if meeting is None:
        return
    for key in ("joinMeetingId", "passcode", "token"):
        read_str(meeting, key)
    organizer = _obj(meeting, "organizer")
    user = None if organizer is None else _obj(organizer, "user")
    if user is not None:
        read_str(user, "id")
        read_str(user, "tenantId")


@dataclass(frozen=True)
class CallResource:
    """A (possibly partial) call. Absent properties are None."""

    id: str | None
    state: str | None  # lower_snake: established, transfer_accepted, ...
    direction: str | None
    callback_uri: str | None
    source: JsonDict | None  # participantInfo as sent
    source_identity: Identity | None
    targets: list[JsonDict] | None
    requested_modalities: list[str] | None
    media_config: JsonDict | None
    chat_info: JsonDict | None
    meeting_info: JsonDict | None
    tenant_id: str | None
    my_participant_id: str | None
    call_chain_id: str | None
    subject: str | None
    media_state_audio: str | None
    result_info: ResultInfo | None
    tone_info: ToneInfo | None
    call_options: JsonDict | None
    raw: JsonDict = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> CallResource:
        if not isinstance(data, dict):
            raise ResourceFormatError("a call must be an object")
        state = _enum(data, "state")
        source = _obj(data, "source")
        targets = _list(data, "targets")
        if targets is not None and not all(isinstance(t, dict) for t in targets):
            raise ResourceFormatError("targets entries must be objects")
        modalities = _list(data, "requestedModalities")
        media_state = _obj(data, "mediaState")
        chat_info = _obj(data, "chatInfo")
        meeting_info = _obj(data, "meetingInfo")
        _check_meeting_coordinates(chat_info, meeting_info)
        return cls(
            id=read_str(data, "id"),
            state=None if state is None else camel_to_snake(state),
            direction=None if (d := _enum(data, "direction")) is None else d.lower(),
            callback_uri=read_str(data, "callbackUri"),
            source=source,
            source_identity=None
            if source is None
            else Identity.from_identity_set(_obj(source, "identity")),
            targets=targets,
            requested_modalities=None
            if modalities is None
            else [str(m) for m in modalities],
            media_config=_obj(data, "mediaConfig"),
            chat_info=chat_info,
            meeting_info=meeting_info,
            tenant_id=read_str(data, "tenantId"),
            my_participant_id=read_str(data, "myParticipantId"),
            call_chain_id=read_str(data, "callChainId"),
            subject=read_str(data, "subject"),
            media_state_audio=None
            if media_state is None
            else _enum(media_state, "audio"),
            result_info=ResultInfo.parse(_obj(data, "resultInfo")),
            tone_info=ToneInfo.parse(_obj(data, "toneInfo")),
            call_options=_obj(data, "callOptions"),
            raw=data,
        )

    @property
    def media_config_kind(self) -> str | None:
        if self.media_config is None:
            return None
        kind = odata_type(self.media_config)
        return {
            "serviceHostedMediaConfig": "service_hosted",
            "appHostedMediaConfig": "app_hosted",
        }.get(kind, "unknown")


@dataclass(frozen=True)
class OperationResource:
    """A commsOperation (contract §5). ``status`` is lower case: running, completed, ..."""

    id: str | None
    kind: str  # the @odata.type short name, e.g. playPromptOperation; "" if absent
    status: str | None
    client_context: str | None
    result_info: ResultInfo | None
    raw: JsonDict = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> OperationResource:
        if not isinstance(data, dict):
            raise ResourceFormatError("an operation must be an object")
        status = _enum(data, "status")
        return cls(
            id=read_str(data, "id"),
            kind=odata_type(data),
            status=None if status is None else status.lower(),
            client_context=read_str(data, "clientContext"),
            result_info=ResultInfo.parse(_obj(data, "resultInfo")),
            raw=data,
        )

    @property
    def is_final(self) -> bool:
        """A completed/failed answer means no notification will follow (contract §5)."""
        return self.status in {"completed", "failed"}

    @property
    def recording_location(self) -> str | None:
        return read_str(self.raw, "recordingLocation") or None

    @property
    def recording_access_token(self) -> str | None:
        return read_str(self.raw, "recordingAccessToken") or None


@dataclass(frozen=True)
class OnlineMeetingResource:
    id: str
    subject: str
    join_web_url: str
    start: str | None
    end: str | None
    chat_info: JsonDict | None
    join_meeting_id: str | None
    passcode: str | None
    organizer_id: str | None
    organizer_tenant_id: str | None
    raw: JsonDict = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> OnlineMeetingResource:
        if not isinstance(data, dict):
            raise ResourceFormatError("an onlineMeeting must be an object")
        settings = _obj(data, "joinMeetingIdSettings") or {}
        participants = _obj(data, "participants") or {}
        organizer = _obj(participants, "organizer") or {}
        identity = Identity.from_identity_set(_obj(organizer, "identity"))
        return cls(
            id=read_str(data, "id") or "",
            subject=read_str(data, "subject") or "",
            join_web_url=read_str(data, "joinWebUrl") or "",
            start=read_str(data, "startDateTime"),
            end=read_str(data, "endDateTime"),
            chat_info=_obj(data, "chatInfo"),
            join_meeting_id=read_str(settings, "joinMeetingId"),
            passcode=read_str(settings, "passcode"),
            organizer_id=identity.id or None,
            organizer_tenant_id=identity.tenant_id or None,
            raw=data,
        )
