"""One call's changes accumulated over a notification batch, and writing them.

Ingest loads the participant rows of a batch's calls once (one query for all of
them), applies every notification to a ``CallWork`` in memory, and writes the
changed participant rows of the whole batch in one statement (``bulkwrite``).
Nothing here decides what a notification means (``ingest.py``, ``rosters.py`` do).

Loaded rows are kept as the database returned them (``storedrows``), and a
``Participant`` is built only for a row that is about to change. The rows a
batch's rosters will skip (``load_batch_rows``'s ``unchanged``: their entry
digest is the one every roster of the batch sends for them) come without their
other columns; should such a row have to be built after all, the call's rows
that came so are read again whole, once.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from callbot.calls.models import Action, Call, Participant, ParticipantChange
from callbot.calls.storedrows import StoredRows, read_rows

PARTICIPANT_FIELDS = [
    "identity_kind",
    "identity_id",
    "display_name",
    "identity_tenant_id",
    "is_bot",
    "is_muted",
    "is_in_lobby",
    "is_sharing_screen",
    "media_streams",
    "roster_sequence",
    "removed_reason",
    "left_at",
    "on_hold",
    "entry_digest",
    "updated_at",
]


# What a participant's state is made of: a change to any of these is a change of
# the roster (a delta, a version bump). ``entry_digest`` is bookkeeping.
DIFFED_FIELDS = [
    f for f in PARTICIPANT_FIELDS if f not in {"updated_at", "entry_digest"}
]


def state_of(p: Participant) -> tuple[Any, ...]:
    return tuple(getattr(p, f) for f in DIFFED_FIELDS)


# What the roster history keeps of each change (``ParticipantChange.changes``).
TRACKED = ["display_name", "is_muted", "is_in_lobby", "is_sharing_screen", "on_hold"]
_AT = {name: DIFFED_FIELDS.index(name) for name in [*TRACKED, "left_at"]}
_AT_REASON = DIFFED_FIELDS.index("removed_reason")


@dataclass
class CallWork:
    """Changes to one call accumulated over a batch."""

    call: Call
    fresh: bool
    base_version: int
    dirty: set[str] = field(default_factory=set)
    call_changes: dict[str, Any] = field(default_factory=dict)
    participants: dict[str, Participant] = field(default_factory=dict)
    left: dict[str, Participant] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    # The stored state came from a notification (not a new row's placeholder), so
    # later states must follow the move table.
    state_seen: bool = True
    # Recordings to fetch after commit: (action id, location, access token).
    recordings: list[tuple[int, str, str]] = field(default_factory=list)
    # New tones in the order pressed, for the bot's behaviour (signals.CallActivity).
    tones: list[str] = field(default_factory=list)
    # Bumped by every applied change, so one notification's effect can be told.
    mutations: int = 0
    # Stored values of participant rows touched in this batch, to write only the diff.
    originals: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    # Participant changes to insert once the rows are saved (one insert per batch).
    changes: list[ParticipantChange] = field(default_factory=list)

    # Participant rows of this call seen in this batch, by key (one load per
    # batch): ``rows`` built, ``stored`` as loaded and not built yet.
    rows: dict[str, Participant] = field(default_factory=dict)
    stored: StoredRows | None = None
    present_loaded: bool = False
    absent: set[str] = field(default_factory=set)
    # Rows whose ``entry_digest`` this batch changed, to write with the others.
    redigested: dict[str, Participant] = field(default_factory=dict)

    def load_rows(self, keys: set[str], *, all_present: bool) -> None:
        """Make the given keys (where stored) and, if asked, everyone present
        loaded; only what this batch has not loaded yet is queried."""
        missing = self.not_loaded(keys)
        if all_present and not self.present_loaded:
            query = Q(left_at__isnull=True) | Q(graph_key__among=missing)
            self.present_loaded = True
        elif missing:
            query = Q(graph_key__among=missing)
        else:
            return
        for stored in read_rows(Q(call=self.call) & query):
            self.keep(stored)
        self.absent |= self.not_loaded(missing)

    def keep(self, stored: StoredRows) -> None:
        """Take ``stored``'s rows, where this batch has none for their key (or
        only one read without its other columns, and ``stored``'s is whole)."""
        if self.stored is None and not self.rows:
            # The first rows this batch loads for the call: all of them taken
            # as they are (a full roster's thousand, without a loop over them).
            self.stored = StoredRows(
                stored.layout, dict(stored.raw), stored.call_id, set(stored.light)
            )
            return
        if self.stored is None:
            self.stored = StoredRows(stored.layout, {})
        mine = self.stored
        for key, raw in stored.raw.items():
            if key in self.rows:
                continue
            light = key in stored.light
            if key not in mine.raw:
                mine.raw[key] = mine.layout.adopt(stored.layout, raw)
                if light:
                    mine.light.add(key)
            elif key in mine.light and not light:
                mine.raw[key] = mine.layout.adopt(stored.layout, raw)
                mine.light.discard(key)

    def not_loaded(self, keys: set[str]) -> set[str]:
        """The keys this batch has neither loaded a row for nor found absent."""
        missing = keys - self.rows.keys() - self.absent
        if self.stored is not None:
            missing -= self.stored.raw.keys()
        return missing

    def row(self, key: str) -> Participant | None:
        """The row of ``key``, built now if it was only loaded; None if none."""
        p = self.rows.get(key)
        if p is None and self.stored is not None and key in self.stored.raw:
            if key in self.stored.light:
                self.read_whole()
            p = self.rows[key] = self.stored.build(self.stored.raw.pop(key), self.call)
        return p

    def read_whole(self) -> None:
        """Read again, whole, the rows loaded without their other columns (one
        query): one of them is to be built after all."""
        mine = self.stored
        if mine is None or not mine.light:
            return
        light, mine.light = mine.light, set()
        for stored in read_rows(Q(call=self.call, graph_key__among=light)):
            for key, raw in stored.raw.items():
                if key in light and key in mine.raw:
                    mine.raw[key] = mine.layout.adopt(stored.layout, raw)

    def all_rows(self) -> dict[str, Participant]:
        """Every loaded row, built."""
        if self.stored is not None:
            for key in list(self.stored.raw):
                self.row(key)
        return self.rows

    def glance(self, key: str) -> tuple[int, str] | None:
        """The roster sequence and entry digest of the row of ``key``, without
        building it; None if no row is loaded."""
        p = self.rows.get(key)
        if p is not None:
            return p.roster_sequence, p.entry_digest
        if self.stored is not None and (raw := self.stored.raw.get(key)) is not None:
            at = self.stored.layout
            return raw[at.roster_sequence], raw[at.entry_digest]
        return None

    def untaken(self, keys: Sequence[str], digests: Sequence[str]) -> list[int]:
        """The positions of ``keys`` whose loaded row did not take the entry
        of the same position's digest last (or has none loaded): what
        ``glance`` tells of each, in one pass over a thousand."""
        rows = self.rows
        raw = self.stored.raw if self.stored is not None else {}
        at = self.stored.layout.entry_digest if self.stored is not None else 0
        untaken = []
        for i, key in enumerate(keys):
            p = rows.get(key)
            taken: str | None
            if p is not None:
                taken = p.entry_digest
            else:
                stored = raw.get(key)
                taken = None if stored is None else stored[at]
            if taken != digests[i]:
                untaken.append(i)
        return untaken

    def present_keys(self) -> list[str]:
        """The keys of the loaded rows of people present."""
        keys = [key for key, p in self.rows.items() if p.left_at is None]
        if self.stored is not None:
            left_at = self.stored.layout.left_at
            keys += [
                key for key, raw in self.stored.raw.items() if raw[left_at] is None
            ]
        return keys

    def redigest(self, p: Participant, digest: str) -> None:
        """Keep ``digest`` as the entry ``p`` now reflects, written with the batch."""
        if p.entry_digest != digest:
            p.entry_digest = digest
            if p.pk is not None:
                self.redigested[p.graph_key] = p

    def remember(self, p: Participant) -> None:
        if p.pk is not None and p.graph_key not in self.originals:
            self.originals[p.graph_key] = state_of(p)

    def set(self, name: str, value: Any, public: Any = None) -> bool:
        if getattr(self.call, name) == value:
            return False
        setattr(self.call, name, value)
        self.dirty.add(name)
        self.call_changes[name] = value if public is None else public
        self.mutations += 1
        return True

    def note_change(
        self,
        p: Participant,
        before: tuple[Any, ...] | None,
        now: datetime,
        *,
        cause: Action | None = None,
    ) -> None:
        """Keep what became of ``p`` since ``before`` (``state_of`` it, None for a
        new row) as ``ParticipantChange`` rows; nothing when no tracked field,
        nor presence, changed. Saved by ingest after the participant rows."""
        after = state_of(p)
        Event = ParticipantChange.Event
        notes: list[tuple[str, dict[str, Any]]] = []
        if before is None:
            flags = {f: [None, after[_AT[f]]] for f in TRACKED[1:] if after[_AT[f]]}
            notes.append((Event.JOINED, flags))
            if p.left_at is not None:
                notes.append((Event.LEFT, {"removed_reason": [None, p.removed_reason]}))
        else:
            diff = {
                f: [before[_AT[f]], after[_AT[f]]]
                for f in TRACKED
                if before[_AT[f]] != after[_AT[f]]
            }
            was_in = before[_AT["left_at"]] is None
            if was_in and p.left_at is not None:
                diff["removed_reason"] = [before[_AT_REASON], p.removed_reason]
                notes.append((Event.LEFT, diff))
            elif not was_in and p.left_at is None:
                notes.append((Event.REJOINED, diff))
            elif diff:
                notes.append((Event.CHANGED, diff))
        for event, changes in notes:
            self.changes.append(
                ParticipantChange(
                    call=self.call,
                    participant=p,
                    at=now,
                    event=event,
                    changes=changes,
                    cause=cause,
                )
            )

    @property
    def changed(self) -> bool:
        return self.mutations > 0


def load_batch_rows(
    needs: list[tuple[CallWork, set[str], bool]],
    unchanged: dict[int, set[str]] | None = None,
    known: dict[int, dict[str, tuple[Any, ...]]] | None = None,
) -> None:
    """``CallWork.load_rows`` for every call of a batch in one query: each item's
    keys, and with its flag everyone present. What an item has loaded already is
    not asked for again. A row whose entry digest is among ``unchanged`` (by
    call id: the digests the batch will skip) is read without its other columns
    (``storedrows.LIGHT_FIELDS``). ``known``: by call id, light rows that stand
    so in the database, every present row of the call among them or among its
    keys (``rostercache``): taken as read, and the call's present rows count
    as loaded; its keys are read whole."""
    known = known or {}
    todo = []
    for item, keys, all_present in needs:
        missing = item.not_loaded(keys)
        everyone = all_present and not item.present_loaded
        if missing or everyone or item.call.pk in known:
            todo.append((item, missing, everyone))
    if not todo:
        return
    by_call = {item.call.pk: item for item, _, _ in todo}
    keys = set().union(*(missing for _, missing, _ in todo))
    present = [item.call.pk for item, _, everyone in todo if everyone]
    query = Q(pk__in=[])
    if keys:
        query |= Q(call_id__in=list(by_call), graph_key__among=keys)
    if present:
        query |= Q(call_id__in=present, left_at__isnull=True)
    light = [
        Q(call_id=call_id, entry_digest__among=digests)
        for call_id, digests in (unchanged or {}).items()
        if call_id in by_call and call_id not in known and digests
    ]
    for stored in read_rows(
        query,
        functools.reduce(operator.or_, light) if light else None,
        {call_id: rows for call_id, rows in known.items() if call_id in by_call},
    ):
        by_call[stored.call_id].keep(stored)
    for item, missing, everyone in todo:
        item.present_loaded |= everyone or item.call.pk in known
        item.absent |= item.not_loaded(missing)


def changed_participants(
    items: list[CallWork], now: datetime
) -> tuple[list[Participant], list[str]]:
    """The stored participant rows the batch changed, and the fields any of them
    changed (``updated_at`` set to ``now`` on each), for one ``update_rows``."""
    rows: list[Participant] = []
    fields: set[str] = set()
    for item in items:
        touched = {**item.redigested, **item.participants, **item.left}
        if item.redigested:
            fields.add("entry_digest")
        for p in touched.values():
            if p.pk is None:
                continue
            before = item.originals.get(p.graph_key)
            after = state_of(p)
            changed = {
                name
                for i, (name, value) in enumerate(
                    zip(DIFFED_FIELDS, after, strict=True)
                )
                if before is None or before[i] != value
            }
            if changed:
                p.updated_at = now
                fields |= changed
                rows.append(p)
            elif p.graph_key in item.redigested:
                rows.append(p)  # the digest alone: not a change of the row's state
    if rows:
        fields.add("updated_at")
    return rows, sorted(fields)
