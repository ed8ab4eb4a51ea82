"""Reading a call's history: the roster as it was, and keyset pages of its timeline.

Reads only. Each page costs one query per source (notifications, roster changes,
actions, audit entries, recordings, the IVR session), each taking at most
``size + 1`` rows past the cursor by an index on (call, time, id), plus two small
ones when the page holds a mute or a leave to explain. Must not import the
consumers or the views.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from callbot.calls.models import (
    Action,
    AuditEntry,
    Call,
    CallEvent,
    Participant,
    ParticipantChange,
    Recording,
)
from callbot.ivr.models import IvrSession
from dashboard import timeline
from dashboard.timeline import Cursor, Entry, Page

PAGE_SIZE = 100
PAGE_SIZE_MAX = 500
# Rows an export reads at a time.
EXPORT_CHUNK = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


M = TypeVar("M", bound=Model)


def _beyond(
    rows: QuerySet[M],
    time_field: str,
    source: str,
    key: Cursor | None,
    *,
    newest_first: bool,
    size: int,
) -> list[M]:
    if key is not None:
        lookup, tie = timeline.bound(key, source, newest_first=newest_first)
        condition = Q(**{f"{time_field}__{lookup}": key.at})
        if tie:
            condition |= Q(**{time_field: key.at, f"pk__{lookup}": key.id})
        rows = rows.filter(condition)
    order = (f"-{time_field}", "-pk") if newest_first else (time_field, "pk")
    return list(rows.order_by(*order)[: size + 1])


def name_of(p: Participant) -> str:
    return p.display_name or p.identity_id or p.graph_id


def _roster_entries(call: Call, changes: Sequence[ParticipantChange]) -> list[Entry]:
    causes = explain(call, changes)
    return [
        timeline.roster_entry(c, name_of(c.participant), causes.get(c.pk))
        for c in changes
    ]


def explain(
    call: Call, changes: Sequence[ParticipantChange], *, whole_call: bool = False
) -> dict[int, Action]:
    """Who muted or removed whom among ``changes`` (``timeline.attribute``), read
    over the whole history of the people concerned so a page boundary cannot
    change the answer (``whole_call``: ``changes`` are all the call's)."""
    causes = {c.pk: c.cause for c in changes if c.cause is not None}
    people = {
        c.participant_id
        for c in changes
        if c.pk not in causes and timeline.change_kind(c)
    }
    if not people:
        return causes
    actions = Action.objects.filter(
        call=call, kind__in=list(timeline.CAUSE_KINDS)
    ).select_related("requested_by")
    if whole_call:
        candidates = [c for c in changes if c.cause_id is None]
    else:
        candidates = list(
            ParticipantChange.objects.filter(
                call=call, participant_id__in=people, cause__isnull=True
            ).filter(
                Q(event=ParticipantChange.Event.LEFT) | Q(changes__has_key="is_muted")
            )
        )
        actions = actions.filter(participant_id__in=people)
    found = timeline.attribute(candidates, list(actions))
    causes.update(found)
    return causes


def _recording_numbers(call: Call) -> dict[int, int]:
    pks = (
        Recording.objects.filter(call=call).order_by("pk").values_list("pk", flat=True)
    )
    return {pk: n for n, pk in enumerate(pks, 1)}


def recording_number(recording: Recording) -> int:
    """The recording's place among its call's recordings, from 1."""
    earlier = Recording.objects.filter(pk__lt=recording.pk)
    if recording.call_id is None:
        return earlier.filter(call__isnull=True).count() + 1
    return earlier.filter(call_id=recording.call_id).count() + 1


def timeline_page(
    call: Call,
    *,
    after: str = "",
    before: str = "",
    latest: bool = False,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of the call's timeline, oldest entry first.

    ``after`` (a cursor): the ``size`` entries following it; ``before``: the
    ``size`` entries preceding it; neither: the first ``size`` entries, or with
    ``latest`` the last ``size``. Raises ``timeline.CursorError`` for a cursor
    this module did not write, ``ValueError`` for a size out of 1..PAGE_SIZE_MAX.
    """
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise ValueError(f"page size must be 1 to {PAGE_SIZE_MAX}")
    if after and before:
        raise timeline.CursorError("give either after or before, not both")
    key = Cursor.parse(after or before) if (after or before) else None
    newest_first = bool(before) or (latest and key is None)
    entries, more = timeline.merge(
        _sources(call, key, newest_first=newest_first, size=size),
        size,
        newest_first=newest_first,
    )
    if newest_first:
        return Page(entries, has_older=more, has_newer=key is not None)
    return Page(entries, has_older=key is not None, has_newer=more)


def _sources(
    call: Call, key: Cursor | None, *, newest_first: bool, size: int
) -> list[list[Entry]]:
    def beyond(rows: QuerySet[M], time_field: str, source: str) -> list[M]:
        return _beyond(
            rows, time_field, source, key, newest_first=newest_first, size=size
        )

    events = beyond(CallEvent.objects.filter(call=call), "received_at", "notification")
    changes = beyond(
        ParticipantChange.objects.filter(call=call).select_related(
            "participant", "cause__requested_by"
        ),
        "at",
        "roster",
    )
    actions = beyond(
        Action.objects.filter(call=call).select_related("requested_by"),
        "created_at",
        "action",
    )
    # An action is one line with its final outcome: the audit entries of its request
    # and of its outcome would be second and third lines for the same act.
    audits = beyond(
        AuditEntry.objects.filter(call=call, action_ref__isnull=True).exclude(
            outcome="requested", detail__has_key="action_id"
        ),
        "created_at",
        "audit",
    )
    recordings = beyond(Recording.objects.filter(call=call), "created_at", "recording")
    numbers = _recording_numbers(call) if recordings else {}
    return [
        [timeline.event_entry(e) for e in events],
        _roster_entries(call, changes),
        _ivr_entries(call, key, newest_first=newest_first),
        [timeline.action_entry(a) for a in actions],
        [timeline.audit_entry(a) for a in audits],
        [
            timeline.recording_entry(r.pk, r.created_at, numbers.get(r.pk, 0), r.size)
            for r in recordings
        ],
    ]


def _ivr_entries(call: Call, key: Cursor | None, *, newest_first: bool) -> list[Entry]:
    session = IvrSession.objects.filter(call=call).select_related("flow").first()
    if session is None or not isinstance(session.history, list):
        return []
    flow = session.flow.name if session.flow is not None else session.flow_start
    entries = timeline.ivr_entries(session.history, flow)
    if key is None:
        return entries
    return [e for e in entries if timeline.is_beyond(e, key, newest_first=newest_first)]


def whole_timeline(call: Call) -> Iterator[Entry]:
    """Every entry, oldest first, read a page at a time (for exports)."""
    cursor = ""
    while True:
        page = timeline_page(call, after=cursor, size=EXPORT_CHUNK)
        yield from page.entries
        if not page.has_newer:
            return
        cursor = str(page.entries[-1].cursor)


# --- the roster as it was ---------------------------------------------------------------


@dataclass
class PersonHistory:
    participant: Participant
    name: str
    changes: list[Entry] = field(default_factory=list)

    @property
    def left_at(self) -> datetime | None:
        return self.participant.left_at

    @property
    def left_why(self) -> str:
        return timeline.reason_words(self.participant.removed_reason)

    @property
    def joined_at(self) -> datetime:
        return self.participant.joined_at


# People per page of the roster as it was: a 1,000-person meeting is ten pages,
# each costing what one does (keyset on joined_at, id).
ROSTER_PAGE_SIZE = 100


@dataclass
class RosterPage:
    people: list[PersonHistory]
    # Cursors of the next and previous pages; "" at either end.
    after: str
    before: str


def _roster_cursor(p: Participant) -> str:
    return f"{(p.joined_at - _EPOCH) // timedelta(microseconds=1)}.{p.pk}"


def _parse_roster_cursor(text: str) -> tuple[datetime, int]:
    value, _, pk = text.partition(".")
    try:
        micros, ident = int(value), int(pk)
        return _EPOCH + timedelta(microseconds=micros), ident
    except (ValueError, OverflowError):
        raise timeline.CursorError(f"not a roster cursor: {text[:40]!r}") from None


def roster_page(
    call: Call, *, after: str = "", before: str = "", size: int = ROSTER_PAGE_SIZE
) -> RosterPage:
    """One page of everyone ever on the call, in order of joining, each with
    every change recorded for them (who muted or removed whom): the first page,
    the one after the ``after`` cursor, or the one before ``before``. Reads
    ``size + 1`` people by the (call, joined_at, id) index and only their changes
    and the actions that may explain them."""
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise ValueError(f"page size must be 1 to {PAGE_SIZE_MAX}")
    if after and before:
        raise timeline.CursorError("give either after or before, not both")
    rows = Participant.objects.filter(call=call)
    forward = not before
    if after or before:
        at, pk = _parse_roster_cursor(after or before)
        op = "gt" if forward else "lt"
        rows = rows.filter(
            Q(**{f"joined_at__{op}": at}) | Q(joined_at=at, **{f"pk__{op}": pk})
        )
    order = ("joined_at", "pk") if forward else ("-joined_at", "-pk")
    found = list(rows.order_by(*order)[: size + 1])
    more = len(found) > size
    found = found[:size]
    if not forward:
        found.reverse()
    people = _with_changes(call, found)
    has_next, has_prev = (more, bool(after)) if forward else (True, more)
    return RosterPage(
        people,
        after=_roster_cursor(found[-1]) if has_next and found else "",
        before=_roster_cursor(found[0]) if has_prev and found else "",
    )


def _with_changes(call: Call, found: list[Participant]) -> list[PersonHistory]:
    people = {p.pk: PersonHistory(p, name_of(p)) for p in found}
    changes = list(
        ParticipantChange.objects.filter(call=call, participant_id__in=list(people))
        .select_related("cause__requested_by")
        .order_by("at", "pk")
    )
    for c in changes:
        c.participant = people[c.participant_id].participant
    causes = explain(call, changes)
    for c in changes:
        # In the person's own row: "muted by bob", without the name.
        people[c.participant_id].changes.append(
            timeline.roster_entry(c, "", causes.get(c.pk))
        )
    return list(people.values())


def roster_history(call: Call) -> list[PersonHistory]:
    """Everyone ever on the call, in order of joining (every page of
    ``roster_page``)."""
    people: list[PersonHistory] = []
    after = ""
    while True:
        page = roster_page(call, after=after, size=PAGE_SIZE_MAX)
        people += page.people
        if not page.after:
            return people
        after = page.after


@dataclass(frozen=True)
class RosterSummary:
    """An ended call's people: how many were ever on it and the most at once
    (the bot not counted)."""

    ever: int
    peak: int
    peak_at: datetime | None


def roster_summary(call: Call) -> RosterSummary:
    """From each person's joined and left times (a person who left and came
    back counts as present in between: the peak is at most ``ever``)."""
    end = call.terminated_at
    moves: list[tuple[datetime, int]] = []
    ever = 0
    for joined, left in Participant.objects.filter(call=call, is_bot=False).values_list(
        "joined_at", "left_at"
    ):
        ever += 1
        moves.append((joined, 1))
        if left is not None or end is not None:
            moves.append((left or end, -1))  # type: ignore[arg-type]
    # A leave at the very moment of a join is counted first.
    moves.sort(key=lambda m: (m[0], m[1]))
    peak, now, peak_at = 0, 0, None
    for at, step in moves:
        now += step
        if now > peak:
            peak, peak_at = now, at
    return RosterSummary(ever, peak, peak_at)


def flat(entry: Entry) -> dict[str, Any]:
    """The CSV columns of an entry."""
    row = entry.as_json()
    raw = row.pop("raw", None)
    row["raw"] = "" if raw is None else raw
    return row
