"""A call's timeline as one ordered list: shapes, wording, keyset cursors, merging.

Pure: no queries. ``timeline_reads`` fetches the rows of each source a page at a
time and hands them here; the call page, the socket snapshot and the exports all
word entries through these functions, so they read alike.

Every entry has a key ``(at, rank of its source, id)``, unique and totally
ordered; a cursor is that key as text. A page is "the next ``size`` entries after
(or before) a cursor", so consecutive pages neither overlap nor leave a gap,
whatever arrives meanwhile (an entry older than the cursor, written after the
page was read, shows on the page before it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from callbot.calls.access import BOT_NAME
from callbot.calls.live import action_message, iso
from callbot.calls.models import Action, AuditEntry, CallEvent, ParticipantChange

# Same-instant entries read cause before effect: what Teams said, the roster change
# it made, the IVR's step, the action it finished, the audit entry, the recording.
SOURCES = ("notification", "roster", "ivr", "action", "audit", "recording")
RANK = {name: n for n, name in enumerate(SOURCES)}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CursorError(ValueError):
    """A cursor that this module did not write."""


@dataclass(frozen=True)
class Cursor:
    at: datetime
    rank: int
    id: int

    def __str__(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.rank}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Read a cursor written by ``str()``; raises ``CursorError``."""
        try:
            micros, rank, ident = (int(part) for part in text.split("."))
        except ValueError:
            raise CursorError(f"not a timeline cursor: {text[:40]!r}") from None
        if not 0 <= rank < len(SOURCES) or ident < 0:
            raise CursorError(f"not a timeline cursor: {text[:40]!r}")
        try:
            at = _EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise CursorError(f"not a timeline cursor: {text[:40]!r}") from None
        return cls(at, rank, ident)


@dataclass(frozen=True)
class Entry:
    """One line of a call's timeline."""

    at: datetime
    source: str
    id: int
    text: str
    status: str = ""
    # Who did it: a user's name, or ``callbot`` for the bot (IVR, a call policy,
    # beat); ``by_bot`` says which, so the bot is never shown as a person.
    actor: str = ""
    by_bot: bool = False
    # The notification as Graph sent it (notifications only).
    raw: Any = None
    # DTMF keys the caller pressed, from a tone notification.
    digits: str = ""
    # The recording to play (recordings only) and its number within the call.
    recording_id: int | None = None
    recording_number: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def raw_json(self) -> str:
        """The raw notification, indented for reading."""
        if self.raw is None:
            return ""
        return json.dumps(self.raw, indent=2, sort_keys=True, ensure_ascii=False)

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, RANK[self.source], self.id)

    def as_json(self) -> dict[str, Any]:
        """The export's shape (JSON Lines; CSV takes the flat fields)."""
        row: dict[str, Any] = {
            "at": iso(self.at),
            "source": self.source,
            "id": self.id,
            "text": self.text,
            "status": self.status,
            "actor": self.actor,
            "by_bot": self.by_bot,
        }
        if self.digits:
            row["digits"] = self.digits
        if self.recording_id is not None:
            row["recording_id"] = self.recording_id
        if self.raw is not None:
            row["raw"] = self.raw
        return row


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    has_older: bool
    has_newer: bool

    @property
    def older(self) -> str:
        return str(self.entries[0].cursor) if self.has_older and self.entries else ""

    @property
    def newer(self) -> str:
        return str(self.entries[-1].cursor) if self.has_newer and self.entries else ""


def bound(key: Cursor, source: str, *, newest_first: bool) -> tuple[str, bool]:
    """How a source's rows lie beyond ``key`` in (time, id), as a lookup on the
    time (``gt``/``gte``, or ``lt``/``lte`` going back) and whether a row at the
    very same time must also lie beyond it by id (the cursor's own source)."""
    rank = RANK[source]
    strict, loose = ("lt", "lte") if newest_first else ("gt", "gte")
    if rank == key.rank:
        return strict, True
    ahead = rank < key.rank if newest_first else rank > key.rank
    return (loose if ahead else strict), False


def is_beyond(entry: Entry, key: Cursor, *, newest_first: bool) -> bool:
    mine = (entry.at, RANK[entry.source], entry.id)
    theirs = (key.at, key.rank, key.id)
    return mine < theirs if newest_first else mine > theirs


def merge(
    sources: Iterable[Sequence[Entry]], size: int, *, newest_first: bool
) -> tuple[list[Entry], bool]:
    """The first ``size`` entries of the sources' rows in key order (each source
    gave at most ``size + 1`` rows past the cursor, in its own order); the list
    comes back oldest first, with whether more lie beyond it."""
    rows = sorted(
        (e for rows in sources for e in rows),
        key=lambda e: (e.at, RANK[e.source], e.id),
        reverse=newest_first,
    )
    page = rows[:size]
    if newest_first:
        page.reverse()
    return page, len(rows) > size


# --- wording ---------------------------------------------------------------------------


def actor_of(action: Action) -> tuple[str, bool]:
    """Who asked for an action: the user, or the bot (IVR, policy, beat)."""
    if action.requested_by_id is None:
        return BOT_NAME, True
    user = action.requested_by
    return (user.get_username() if user is not None else "deleted user"), False


def describe_action(action: Action) -> str:
    """One line, worded as the page words live action entries (a failure explained)."""
    text = action.get_kind_display()
    if action.target:
        text = f"{text} → {action.target}"
    why = action_message(action)
    return f"{text}: {why}" if why else text


def action_entry(action: Action) -> Entry:
    """One line per action, placed at its request, with its final (or current)
    status: not a line per move."""
    actor, by_bot = actor_of(action)
    return Entry(
        at=action.created_at,
        source="action",
        id=action.pk,
        text=describe_action(action),
        status=action.status,
        actor=actor,
        by_bot=by_bot,
    )


def audit_entry(entry: AuditEntry) -> Entry:
    return Entry(
        at=entry.created_at,
        source="audit",
        id=entry.pk,
        text=f"{entry.actor_name}: {entry.action} {entry.target}".strip(),
        status=entry.outcome,
        actor=entry.actor_name,
        by_bot=entry.actor_id is None and entry.actor_name == BOT_NAME,
    )


def event_entry(event: CallEvent) -> Entry:
    return Entry(
        at=event.received_at,
        source="notification",
        id=event.pk,
        text=describe_event(event),
        status="" if event.applied else "no change",
        raw=event.payload,
        digits=tone_of(event),
    )


# Graph names keys ``tone0``..``tone9``, ``toneStar``, ``tonePound``, ``toneA``..
_KEYS = {"star": "*", "pound": "#"}


def tone_of(event: CallEvent) -> str:
    """The key a tone notification reports (``5``, ``*``, ``#``), or ''."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    data = payload.get("resourceData")
    tone = data.get("toneInfo") if isinstance(data, dict) else None
    name = str(tone.get("tone") or "") if isinstance(tone, dict) else ""
    key = name[4:] if name.lower().startswith("tone") else name
    return _KEYS.get(key.lower(), key)


def ivr_entries(history: Sequence[dict[str, Any]], flow: str) -> list[Entry]:
    """The IVR path: one entry per step entered (``IvrSession.history``); the id
    is the position in that list, which only ever grows at its end."""
    entries = []
    for n, step in enumerate(history, 1):
        try:
            at = datetime.fromisoformat(str(step.get("at")))
        except ValueError:
            continue
        if at.tzinfo is None:  # stored as UTC; a naive time cannot be ordered
            at = at.replace(tzinfo=UTC)
        why = str(step.get("after") or "")
        text = f"IVR {flow}: step {step.get('step', '?')}"
        entries.append(
            Entry(
                at=at,
                source="ivr",
                id=n,
                text=f"{text} (after {why})" if why else text,
                actor=BOT_NAME,
                by_bot=True,
            )
        )
    return entries


def recording_entry(pk: int, at: datetime, number: int, size: int) -> Entry:
    return Entry(
        at=at,
        source="recording",
        id=pk,
        text=f"Recording {number} ({size / 1024:.0f} KiB)",
        recording_id=pk,
        recording_number=number,
    )


_FLAG_WORDS = {
    "is_muted": ("muted", "unmuted"),
    "is_in_lobby": ("waits in the lobby", "admitted from the lobby"),
    "is_sharing_screen": ("started sharing", "stopped sharing"),
    "on_hold": ("put on hold", "taken off hold"),
}
_REASON_WORDS = {"left": "", "call_ended": "the call ended"}


def reason_words(reason: str) -> str:
    """Why someone left, in words ('' for leaving by themselves)."""
    return _REASON_WORDS.get(reason, reason)


def change_words(change: ParticipantChange) -> list[str]:
    """What changed, in words (``muted``, ``started sharing``, ...)."""
    words = []
    changes = change.changes if isinstance(change.changes, dict) else {}
    for name, (on, off) in _FLAG_WORDS.items():
        pair = changes.get(name)
        if isinstance(pair, list) and len(pair) == 2 and pair[0] != pair[1]:
            words.append(on if pair[1] else off)
    renamed = changes.get("display_name")
    if isinstance(renamed, list) and len(renamed) == 2 and renamed[0]:
        words.append(f"renamed from {renamed[0]}")
    return words


def describe_change(change: ParticipantChange, name: str, by: str = "") -> str:
    """``Ana Lopez joined (muted)``, ``Lee Chen muted by bob``, ``Sam left``."""
    Event = ParticipantChange.Event
    words = change_words(change)
    if change.event == Event.JOINED:
        text = f"{name} joined" + (f" ({', '.join(words)})" if words else "")
    elif change.event == Event.REJOINED:
        text = f"{name} came back" + (f" ({', '.join(words)})" if words else "")
    elif change.event == Event.LEFT:
        reason = str((change.changes or {}).get("removed_reason", ["", ""])[-1] or "")
        why = reason_words(reason)
        text = f"{name} left" + (f" ({why})" if why else "")
    else:
        text = f"{name} {', '.join(words) or 'changed'}"
    return (f"{text} by {by}" if by else text).strip()


def roster_entry(change: ParticipantChange, name: str, cause: Action | None) -> Entry:
    actor, by_bot = actor_of(cause) if cause is not None else ("", False)
    by = "the bot" if by_bot else actor
    return Entry(
        at=change.at,
        source="roster",
        id=change.pk,
        text=describe_change(change, name, by),
        actor=actor,
        by_bot=by_bot,
        extra={
            "participant_id": change.participant_id,
            "cause_id": change.cause_id,
            "event": change.event,
        },
    )


# --- who muted or removed whom ----------------------------------------------------------

# An action explains a roster change only if the change came within this long of
# the action's last move; later, the person did it themselves.
CAUSE_WINDOW = timedelta(minutes=2)
CAUSE_KINDS = {
    Action.Kind.MUTE_PARTICIPANT.value: "mute",
    Action.Kind.REMOVE_PARTICIPANT.value: "leave",
}


def change_kind(change: ParticipantChange) -> str:
    """``mute`` (muted), ``leave`` (left) or '' for other changes."""
    if change.event == ParticipantChange.Event.LEFT:
        return "leave"
    pair = (change.changes or {}).get("is_muted")
    if isinstance(pair, list) and len(pair) == 2 and pair[1] and not pair[0]:
        return "mute"
    return ""


def attribute(
    changes: Sequence[ParticipantChange], actions: Sequence[Action]
) -> dict[int, Action]:
    """Which action muted or removed whom: change id -> action.

    1. A change keeps the cause ingest stored (hold music).
    2. Else each mute or removal action that did not fail, oldest first, explains
       the first unexplained mute (or leave) of its participant at or after its
       request and within ``CAUSE_WINDOW`` of its last move.
    A mute with no such action was the person's own (or Teams').
    """
    found: dict[int, Action] = {}
    by_id = {a.pk: a for a in actions}
    for change in changes:
        if change.cause_id is not None and change.cause_id in by_id:
            found[change.pk] = by_id[change.cause_id]
    pending: dict[tuple[int, str], list[ParticipantChange]] = {}
    for change in sorted(changes, key=lambda c: (c.at, c.pk)):
        kind = change_kind(change)
        if kind and change.pk not in found:
            pending.setdefault((change.participant_id, kind), []).append(change)
    for action in sorted(actions, key=lambda a: (a.created_at, a.pk)):
        explains = CAUSE_KINDS.get(action.kind)
        if (
            explains is None
            or action.participant_id is None
            or action.status == "failed"
        ):
            continue
        waiting = pending.get((action.participant_id, explains), [])
        last = action.completed_at or action.sent_at or action.created_at
        for change in waiting:
            if action.created_at <= change.at <= last + CAUSE_WINDOW:
                found[change.pk] = action
                waiting.remove(change)
                break
    return found


# --- notifications in words ----------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    code: Any
    subcode: Any
    message: str

    def __str__(self) -> str:
        return f"{self.code}/{self.subcode or 0} {self.message}".strip()


def _result(data: dict[str, Any]) -> _Result | None:
    info = data.get("resultInfo")
    if not isinstance(info, dict):
        return None
    return _Result(info.get("code"), info.get("subcode"), str(info.get("message", "")))


# Names a roster notification's line shows before "and N more".
ROSTER_NAMES = 5


def _names(entries: Sequence[Any]) -> str:
    names = []
    for entry in entries:
        info = entry.get("info") if isinstance(entry, dict) else None
        identity = info.get("identity") if isinstance(info, dict) else None
        name = ""
        if isinstance(identity, dict):
            for kind in identity.values():
                if isinstance(kind, dict) and kind.get("displayName"):
                    name = str(kind["displayName"])
                    break
        names.append(name or "someone")
    shown = ", ".join(names[:ROSTER_NAMES])
    more = len(names) - ROSTER_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def describe_event(event: CallEvent) -> str:
    """One line for a stored notification, from its raw payload."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    data = payload.get("resourceData")
    change = event.change_type
    if event.resource_kind == "participants":
        if isinstance(data, dict):  # delta roster
            entries = data.get("participants") or []
            entries = entries if isinstance(entries, list) else []
            head = f"roster delta #{data.get('sequenceNumber', '?')}: {len(entries)} changed"
            return f"{head} ({_names(entries)})" if entries else head
        entries = data if isinstance(data, list) else []
        head = f"roster: {len(entries)} in the call"
        return f"{head} ({_names(entries)})" if entries else head
    if not isinstance(data, dict):
        return f"{event.resource_kind} {change}"
    if event.resource_kind == "operation":
        kind = str(data.get("@odata.type", "operation")).rsplit(".", 1)[-1]
        text = f"{kind} {data.get('status', change)}"
        result = _result(data)
        return f"{text}: {result}" if result else text
    parts = [f"call {change}"]
    if data.get("state"):
        parts.append(str(data["state"]))
    tone = data.get("toneInfo")
    if isinstance(tone, dict) and tone.get("tone"):
        parts.append(f"key {tone['tone']}")
    result = _result(data)
    if result:
        parts.append(f"({result})")
    return " ".join(parts)
