"""Meetings: the one upsert by coordinates, what a user saves, and due joins.

A meeting is known by its chat thread id (``chatInfo.threadId``) or, for meetings
joined by id and passcode, by that id. Coordinates arrive from four places (a
pasted join link, a saved meeting, a meeting Graph created for us, and the
``meetingInfo`` of a call's notification); all of them store through
``upsert_meeting``, so a meeting is never stored twice and its coordinates are
written one way.

Must not import services, ingest or the tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from callbot.calls import audit
from callbot.calls.access import ActionRefusedError, Actor, check_actor
from callbot.calls.models import Action, Call, Meeting
from callbot.calls.states import CallKind, CallState
from callbot.graph.meetings import (
    JoinUrlError,
    MeetingIdLink,
    clean_join_meeting_id,
    clean_passcode,
    parse_meeting_link,
)
from callbot.graph.resources import CallResource, OnlineMeetingResource, odata_type

logger = logging.getLogger(__name__)

# Column sizes of Meeting's coordinate fields.
_LIMITS = {
    "thread_id": 255,
    "message_id": 64,
    "reply_chain_message_id": 64,
    "organizer_id": 64,
    "tenant_id": 64,
    "join_meeting_id": 32,
    "passcode": 64,
    "online_meeting_id": 255,
}


@dataclass(frozen=True)
class Coordinates:
    """What identifies a meeting and lets the bot join it (contract §2.5, §10.3)."""

    thread_id: str = ""
    message_id: str = ""
    reply_chain_message_id: str = ""
    organizer_id: str = ""
    tenant_id: str = ""
    join_web_url: str = ""
    join_meeting_id: str = ""
    passcode: str = ""
    meeting_token: str = ""
    online_meeting_id: str = ""

    def values(self) -> dict[str, str]:
        """Field values as stored, cut to their columns."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = str(getattr(self, f.name) or "")
            limit = _LIMITS.get(f.name)
            out[f.name] = value[:limit] if limit else value
        return out


def coordinates_from_link(url: str) -> Coordinates:
    """The coordinates in a pasted Teams join link, classic or short
    (``/meet/<id>?p=<passcode>``); refused if it is neither."""
    try:
        coords = parse_meeting_link(url)
    except JoinUrlError as exc:
        raise ActionRefusedError("invalid", f"Not a Teams join link: {exc}.") from None
    if isinstance(coords, MeetingIdLink):
        return Coordinates(
            join_web_url=coords.join_web_url,
            join_meeting_id=coords.join_meeting_id,
            passcode=coords.passcode or "",
        )
    return Coordinates(
        thread_id=coords.thread_id,
        message_id=coords.message_id,
        reply_chain_message_id=coords.reply_chain_message_id or "",
        organizer_id=coords.organizer_id,
        tenant_id=coords.tenant_id,
        join_web_url=coords.join_web_url,
    )


def coordinates_from_meeting_id(
    join_meeting_id: str, passcode: str = ""
) -> Coordinates:
    """A meeting named by the id and passcode Teams shows under its join link."""
    try:
        return Coordinates(
            join_meeting_id=clean_join_meeting_id(str(join_meeting_id)),
            passcode=clean_passcode(str(passcode or "")) or "",
        )
    except JoinUrlError as exc:
        raise ActionRefusedError("invalid", f"{str(exc).capitalize()}.") from None


def coordinates_from_call(r: CallResource) -> Coordinates | None:
    """The meeting named by a call notification's ``chatInfo``/``meetingInfo``."""
    if not r.meeting_info:
        return None
    chat = r.chat_info or {}
    info = r.meeting_info
    kind = odata_type(info)
    organizer = (
        ((info.get("organizer") or {}).get("user") or {})
        if kind == "organizerMeetingInfo"
        else {}
    )
    return Coordinates(
        thread_id=str(chat.get("threadId") or ""),
        message_id=str(chat.get("messageId") or "0"),
        reply_chain_message_id=str(chat.get("replyChainMessageId") or ""),
        organizer_id=str(organizer.get("id") or ""),
        tenant_id=str(organizer.get("tenantId") or r.tenant_id or ""),
        join_meeting_id=str(info.get("joinMeetingId") or "")
        if kind == "joinMeetingIdMeetingInfo"
        else "",
        passcode=str(info.get("passcode") or "")
        if kind == "joinMeetingIdMeetingInfo"
        else "",
        meeting_token=str(info.get("token") or "")
        if kind == "tokenMeetingInfo"
        else "",
    )


def coordinates_from_online_meeting(resource: OnlineMeetingResource) -> Coordinates:
    """The coordinates of a meeting Graph created for us (``onlineMeeting``)."""
    chat = resource.chat_info or {}
    return Coordinates(
        thread_id=str(chat.get("threadId") or ""),
        message_id=str(chat.get("messageId") or "0"),
        reply_chain_message_id=str(chat.get("replyChainMessageId") or ""),
        organizer_id=resource.organizer_id or "",
        tenant_id=resource.organizer_tenant_id or settings.GRAPH_TENANT_ID,
        join_web_url=resource.join_web_url,
        join_meeting_id=resource.join_meeting_id or "",
        passcode=resource.passcode or "",
        online_meeting_id=resource.id,
    )


def upsert_meeting(
    coords: Coordinates,
    *,
    replace: bool = False,
    extra: Mapping[str, Any] | None = None,
    meeting: Meeting | None = None,
) -> Meeting | None:
    """Store a meeting by its coordinates; the one writer of coordinate fields.

    Finds the meeting by thread id, else by join meeting id, and creates it when
    neither is stored (a meeting known only by a token is created each time).
    ``replace`` overwrites stored values with the given non-empty ones (a meeting
    the user saved or Graph created); otherwise only blank fields are filled (what
    a notification tells us). ``extra`` sets other fields (subject, times) the same
    way. ``meeting`` updates that row instead (a user editing a stored meeting).
    Returns None when the coordinates identify nothing.
    """
    values = {k: v for k, v in coords.values().items() if v}
    values.update({k: v for k, v in (extra or {}).items() if v not in (None, "")})
    with transaction.atomic():
        created = False
        if (
            meeting is None
            and coords.thread_id
            and coords.join_meeting_id
            and not Meeting.objects.filter(thread_id=values["thread_id"]).exists()
        ):
            # A meeting stored by its join id alone (joined by id: Graph then
            # names its thread, contract §6.2) gains the thread, not a twin.
            meeting = (
                Meeting.objects.filter(
                    join_meeting_id=values["join_meeting_id"], thread_id=""
                )
                .order_by("pk")
                .first()
            )
        if meeting is None:
            if coords.thread_id:
                meeting, created = Meeting.objects.get_or_create(
                    thread_id=values["thread_id"], defaults=values
                )
            elif coords.join_meeting_id:
                meeting, created = Meeting.objects.get_or_create(
                    join_meeting_id=values["join_meeting_id"], defaults=values
                )
            elif coords.meeting_token:
                return Meeting.objects.create(**values)
            else:
                return None
        if created:
            return meeting
        changed = {
            k: v
            for k, v in values.items()
            if getattr(meeting, k) != v and (replace or not getattr(meeting, k))
        }
        if changed or meeting.pk is None:
            for k, v in changed.items():
                setattr(meeting, k, v)
            if meeting.pk is None:
                meeting.save()
            else:
                Meeting.objects.filter(pk=meeting.pk).update(**changed)
    return meeting


def meeting_for_call(r: CallResource) -> Meeting | None:
    """The meeting a call notification names, stored on first sight (§10.3)."""
    coords = coordinates_from_call(r)
    return upsert_meeting(coords) if coords is not None else None


def store_online_meeting(
    resource: OnlineMeetingResource, *, starts_at: datetime, ends_at: datetime
) -> Meeting:
    """Keep a meeting Graph created, with the coordinates needed to join it."""
    meeting = upsert_meeting(
        coordinates_from_online_meeting(resource),
        replace=True,
        extra={
            "subject": resource.subject[:255],
            "starts_at": starts_at,
            "ends_at": ends_at,
        },
    )
    if meeting is None:  # no thread and no join id: keep what we have
        meeting = Meeting.objects.create(
            subject=resource.subject[:255],
            join_web_url=resource.join_web_url,
            online_meeting_id=resource.id[:255],
            starts_at=starts_at,
            ends_at=ends_at,
            tenant_id=(resource.organizer_tenant_id or settings.GRAPH_TENANT_ID)[:64],
        )
    return meeting


def meeting_to_join(params: Mapping[str, Any]) -> Meeting:
    """The stored meeting a join names (``meeting_id``), or the one a pasted
    ``join_web_url`` (any form Teams hands out) or a typed ``join_meeting_id`` and
    ``passcode`` identify, stored on first sight. What a person gave wins over
    what was stored (a meeting's passcode can change). Refused without
    coordinates to join by."""
    if params.get("meeting_id"):
        meeting = Meeting.objects.filter(pk=params["meeting_id"]).first()
        if meeting is None:
            raise ActionRefusedError("invalid", "There is no such meeting.")
    elif params.get("join_web_url") or params.get("join_meeting_id"):
        if params.get("join_web_url"):
            coords = coordinates_from_link(str(params["join_web_url"]))
        else:
            coords = coordinates_from_meeting_id(
                str(params["join_meeting_id"]), str(params.get("passcode") or "")
            )
        found = upsert_meeting(coords, replace=True)
        if found is None:
            raise ActionRefusedError("invalid", "That link names no meeting.")
        meeting = found
    else:
        raise ActionRefusedError(
            "invalid", "Choose a meeting, paste its join link, or give its meeting id."
        )
    if not (meeting.can_join_by_coordinates or meeting.join_meeting_id):
        raise ActionRefusedError(
            "invalid",
            "This meeting has no join coordinates; paste its Teams join link.",
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
    or an actor without ``calls.request_action``. Audited.
    """
    check_actor(actor)
    if starts_at and ends_at and ends_at < starts_at:
        raise ActionRefusedError("invalid", "The meeting cannot end before it starts.")
    if auto_join and starts_at is None:
        raise ActionRefusedError("invalid", "A scheduled join needs a start time.")
    with transaction.atomic():
        if join_web_url:
            coords = coordinates_from_link(join_web_url)
            existing = (
                Meeting.objects.filter(thread_id=coords.thread_id).first()
                if coords.thread_id
                else Meeting.objects.filter(
                    join_meeting_id=coords.join_meeting_id
                ).first()
            )
            if (
                meeting is not None
                and existing is not None
                and existing.pk != meeting.pk
            ):
                raise ActionRefusedError(
                    "invalid", "Another stored meeting already has this join link."
                )
            meeting = upsert_meeting(
                coords, replace=True, meeting=meeting or existing or Meeting()
            )
        if meeting is None:
            raise ActionRefusedError("invalid", "Paste the meeting's Teams join link.")
        if subject:
            meeting.subject = subject[:255]
        if starts_at != meeting.starts_at:
            meeting.joined_at = None  # a moved meeting is joined at its new time
        meeting.starts_at, meeting.ends_at = starts_at, ends_at
        meeting.auto_join, meeting.leave_at_end = auto_join, leave_at_end
        meeting.save()
        audit.record(
            actor,
            "save_meeting",
            meeting.subject or meeting.thread_id,
            outcome="saved",
            detail={"meeting_id": meeting.pk, "auto_join": auto_join},
            client_ip=client_ip,
        )
    return meeting


def live_calls_in(meeting: Meeting) -> list[Call]:
    """The bot's calls in this meeting that have not ended, newest first: a join
    while one exists would put the bot in the meeting twice."""
    return list(
        Call.objects.filter(meeting=meeting)
        .exclude(state__in=[CallState.TERMINATED, CallState.TERMINATING])
        .order_by("-created_at")
    )


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
        .exclude(state__in=[CallState.TERMINATED, CallState.TERMINATING])
        .exclude(
            actions__kind=Action.Kind.HANG_UP, actions__status__in=["queued", "sent"]
        )
        .values_list("pk", flat=True)
    )
