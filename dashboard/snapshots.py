"""Read-side shapes for pages and sockets: the board, one call, its timeline.

Everything here only reads. Snapshots carry each call's ``version``; the version is
read *before* the rows it describes, so a change committed in between shows up in
the snapshot and again in the next delta (deltas are idempotent upserts), and is
never lost. Must not write and must not import the consumers.

The socket sends a snapshot in parts (``stream_parts``): every part names the
snapshot, says its ``part`` number and whether ``more`` follow (the last one also
says ``parts``, how many there were), and none is longer than ``PART_CHARS``
whatever the number of calls or people, far below the 1 MiB daphne allows a
message. The first part carries everything but the long lists; each part carries
a slice of them, in order. The board's snapshot is streamed
(``board_snapshot_stream``): live calls are read ``BOARD_PAGE_CALLS`` at a time
and each part leaves as soon as it is full, so the page paints its first rows
before the last are read; its rows name their ``unavailable`` reason codes by a key
into the first part's ``unavailable`` table (a board of 10,000 calls would
otherwise repeat the same few sets of codes 10,000 times; the socket's ``hello`` words each code once). A call's snapshot is read
whole and then cut, and every part of it also says ``parts``. A page applies a
snapshot once its last part arrived (it may show the rows meanwhile).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypedDict

from django.utils import timezone

from callbot.calls.board import (
    CallSummaryShape,
    call_summaries,
    live_call_pages,
    live_calls,
    unavailable_table,
)
from callbot.calls.dropped import recent_notices
from callbot.calls.live import (
    ParticipantShape,
    action_shape,
    iso,
    participant_shape,
)
from callbot.calls.models import Action, Call, Participant
from dashboard.permissions import UserLike, can_view
from dashboard.timeline_reads import timeline_page

logger = logging.getLogger(__name__)

TIMELINE_LIMIT = 300
# The longest snapshot part, in characters of its JSON (ASCII: Python escapes the
# rest, so also its bytes on the wire).
PART_CHARS = 128 * 1024
# A row alone longer than this (a Graph result message of a novel's length) has
# its long strings cut so that it fits in a part.
ROW_CHARS = 16 * 1024
ROW_TEXT_CHARS = 200
ROW_LIST_ITEMS = 10
# Live calls read per query while a board snapshot streams: the first part leaves
# after one page is read, whatever the number of live calls.
BOARD_PAGE_CALLS = 200


class CallAccessError(Exception):
    """The call does not exist or the user may not see it."""


class TimelineEntry(TypedDict):
    at: str | None
    source: str  # one of ``timeline.SOURCES``
    text: str
    status: str
    actor: str
    by_bot: bool


class BoardSnapshot(TypedDict):
    type: str
    server_time: str | None
    calls: list[CallSummaryShape]
    # Recent calls the bot was dropped from (``callbot.calls.dropped``).
    notices: list[dict[str, Any]]


class CallSnapshot(TypedDict):
    type: str
    server_time: str | None
    call_id: int
    version: int
    call: dict[str, Any]
    participants: list[ParticipantShape]
    actions: list[dict[str, Any]]
    timeline: list[TimelineEntry]


def board_snapshot() -> BoardSnapshot:
    """Every live call's board row, and the recent drops, in a fixed number of
    queries."""
    now = timezone.now()
    return {
        "type": "board.snapshot",
        "server_time": iso(now),
        "calls": call_summaries(live_calls()),
        "notices": recent_notices(now),
    }


def access_call(user: UserLike, call_id: Any) -> Call:
    """The call with this id if the user may see it; raises CallAccessError."""
    if not can_view(user):
        raise CallAccessError("not allowed")
    try:
        return Call.objects.select_related("meeting").get(pk=int(call_id))
    except (TypeError, ValueError, Call.DoesNotExist):
        raise CallAccessError(f"no call {call_id!r}") from None


def call_detail(call: Call) -> dict[str, Any]:
    """The board row plus what only the call page shows."""
    row: dict[str, Any] = dict(call_summaries([call])[0])
    row.update(
        meeting_subject=call.meeting.subject if call.meeting else "",
        media_state_audio=call.media_state_audio,
        my_participant_id=call.my_participant_id,
        tenant_id=call.tenant_id,
        delta_roster=call.delta_roster,
    )
    return row


def call_snapshot(call_id: int) -> CallSnapshot:
    """One call whole: row, present roster, recent actions and the timeline's
    last ``TIMELINE_LIMIT`` entries.

    The call row (and so the version) is read first; see the module docstring.
    """
    call = Call.objects.select_related("meeting").get(pk=call_id)
    participants = [
        participant_shape(p)
        for p in Participant.objects.filter(call_id=call_id, left_at__isnull=True)
    ]
    actions = [
        action_shape(a)
        for a in Action.objects.filter(call_id=call_id).order_by("-created_at")[:50]
    ]
    return {
        "type": "call.snapshot",
        "server_time": iso(timezone.now()),
        "call_id": call.pk,
        "version": call.version,
        "call": call_detail(call),
        "participants": participants,
        "actions": actions,
        "timeline": timeline(call),
    }


def board_snapshot_stream(
    snapshot_id: str,
    *,
    part_chars: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """The board snapshot in parts of at most ``part_chars``, each yielded once full
    (see the module). The first part carries the recent drops, the ``unavailable``
    table its rows refer to, and ``extra`` (the KPIs, the open alerts: small)."""
    now = timezone.now()
    table = unavailable_table()
    key_of = {_content(reasons): key for key, reasons in table.items()}
    head = {
        "type": "board.snapshot",
        "snapshot": snapshot_id,
        "server_time": iso(now),
        "notices": recent_notices(now),
        "unavailable": table,
        **(extra or {}),
    }

    def rows() -> Iterator[dict[str, Any]]:
        for page in live_call_pages(BOARD_PAGE_CALLS):
            for summary in page:
                row: dict[str, Any] = dict(summary)
                # A row whose refusals are not in the table keeps them inline.
                row["unavailable"] = key_of.get(
                    _content(summary["unavailable"]), summary["unavailable"]
                )
                yield row

    return stream_parts(
        head, {"calls": rows()}, repeat=("type", "snapshot"), part_chars=part_chars
    )


def _content(reasons: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(reasons.items()))


def call_snapshot_parts(
    call_id: int,
    snapshot_id: str,
    *,
    part_chars: int | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One call's snapshot in parts of at most ``part_chars``: the first carries the
    call row and its version (and ``extra``: who watches), every part the call id
    and version and a slice of the actions, the roster and the timeline."""
    whole: dict[str, Any] = dict(call_snapshot(call_id))
    lists = {name: whole.pop(name) for name in ("actions", "participants", "timeline")}
    whole.update(snapshot=snapshot_id, call=_fit(whole["call"]), **(extra or {}))
    return snapshot_parts(
        whole,
        lists,
        repeat=("type", "snapshot", "call_id", "version"),
        part_chars=part_chars,
    )


# Stands in for ``part`` and ``parts`` while a part is measured, as wide as either.
_PART_NUMBER_WIDTH = 99999


def snapshot_parts(
    head: dict[str, Any],
    lists: dict[str, list[Any]],
    *,
    repeat: Iterable[str],
    part_chars: int | None = None,
) -> list[dict[str, Any]]:
    """``stream_parts`` gathered, every part also saying ``parts``."""
    parts = list(stream_parts(head, lists, repeat=repeat, part_chars=part_chars))
    for each in parts:
        each["parts"] = len(parts)
    return parts


def stream_parts(
    head: dict[str, Any],
    lists: Mapping[str, Iterable[Any]],
    *,
    repeat: Iterable[str],
    part_chars: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Split a snapshot into parts of at most ``part_chars`` characters of JSON,
    yielding each once it is full (rows are read from ``lists`` as it goes).

    1. The first part is ``head``; later parts carry only its ``repeat`` keys.
    2. Every part has every list (maybe empty); rows fill parts in order, lists in
       the order given, so concatenating the parts' lists gives the whole lists.
    3. Each part says ``part`` (from 1) and ``more`` (false on the last, which
       also says ``parts``).
    A row longer than ``ROW_CHARS`` is cut to fit (``_fit``), so a part is over
    ``part_chars`` only if ``part_chars`` is under ``head`` plus ``ROW_CHARS``.
    ``part_chars`` defaults to ``PART_CHARS``.
    """
    limit = part_chars or PART_CHARS
    keep = tuple(repeat)
    names = list(lists)

    def start(first: bool) -> tuple[dict[str, Any], int]:
        part = dict(head) if first else {key: head[key] for key in keep}
        part.update({name: [] for name in names})
        part.update(part=_PART_NUMBER_WIDTH, more=False, parts=_PART_NUMBER_WIDTH)
        size = len(json.dumps(part))
        del part["parts"]
        return part, size

    number = 1
    part, size = start(True)
    rows_in_part = 0
    for name in names:
        for row in lists[name]:
            length = len(json.dumps(row))
            if length > ROW_CHARS:
                row = _fit(row)
                length = len(json.dumps(row))
                logger.warning("a %s row was cut to fit a snapshot part", name)
            # Two characters of separator (", ") per row.
            if rows_in_part and size + length + 2 > limit:
                part.update(part=number, more=True)
                yield part
                number += 1
                part, size = start(False)
                rows_in_part = 0
            part[name].append(row)
            size += length + 2
            rows_in_part += 1
    part.update(part=number, more=False, parts=number)
    yield part


def _fit(value: Any) -> Any:
    """``value`` with every string cut to ``ROW_TEXT_CHARS`` and every list to
    ``ROW_LIST_ITEMS`` items, when its JSON is over ``ROW_CHARS``."""
    if len(json.dumps(value)) <= ROW_CHARS:
        return value
    return _cut(value)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > ROW_TEXT_CHARS:
        return value[: ROW_TEXT_CHARS - 1] + "…"
    if isinstance(value, list):
        return [_cut(item) for item in value[:ROW_LIST_ITEMS]]
    if isinstance(value, dict):
        return {key: _cut(item) for key, item in value.items()}
    return value


def timeline(call: Call, limit: int = TIMELINE_LIMIT) -> list[TimelineEntry]:
    """The call's last ``limit`` timeline entries (all sources merged), oldest
    first. The call page pages through the rest (``timeline_reads``)."""
    page = timeline_page(call, latest=True, size=limit)
    return [
        {
            "at": iso(e.at),
            "source": e.source,
            "text": e.text,
            "status": e.status,
            "actor": e.actor,
            "by_bot": e.by_bot,
        }
        for e in page.entries
    ]
