"""One call's changes accumulated over a notification batch, and writing them.

Ingest loads the participant rows of a batch's calls once (one query for all of
them), applies every notification to a ``CallWork`` in memory, and writes the
changed participant rows of the whole batch in one statement (``bulkwrite``). Nothing here decides what a notification
means (``ingest.py``, ``rosters.py`` do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q

from callbot.calls.models import Action, Call, Participant, ParticipantChange

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
    "updated_at",
]


DIFFED_FIELDS = [f for f in PARTICIPANT_FIELDS if f != "updated_at"]


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

    # Participant rows of this call seen in this batch, by key (one load per batch).
    rows: dict[str, Participant] = field(default_factory=dict)
    present_loaded: bool = False
    absent: set[str] = field(default_factory=set)

    def load_rows(self, keys: set[str], *, all_present: bool) -> None:
        """Make ``rows`` hold the given keys (where stored) and, if asked, everyone
        present; only what this batch has not loaded yet is queried."""
        missing = {k for k in keys if k not in self.rows and k not in self.absent}
        if all_present and not self.present_loaded:
            query = Q(left_at__isnull=True) | Q(graph_key__in=missing)
            self.present_loaded = True
        elif missing:
            query = Q(graph_key__in=missing)
        else:
            return
        for p in self.call.participants.filter(query):
            self.rows.setdefault(p.graph_key, p)
        self.absent |= {k for k in missing if k not in self.rows}

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


def load_batch_rows(needs: list[tuple[CallWork, set[str], bool]]) -> None:
    """``CallWork.load_rows`` for every call of a batch in one query: each item's
    keys, and with its flag everyone present. What an item has loaded already is
    not asked for again."""
    todo = []
    for item, keys, all_present in needs:
        missing = {k for k in keys if k not in item.rows and k not in item.absent}
        everyone = all_present and not item.present_loaded
        if missing or everyone:
            todo.append((item, missing, everyone))
    if not todo:
        return
    by_call = {item.call.pk: item for item, _, _ in todo}
    keys = set().union(*(missing for _, missing, _ in todo))
    present = [item.call.pk for item, _, everyone in todo if everyone]
    query = Q(pk__in=[])
    if keys:
        query |= Q(call_id__in=list(by_call), graph_key__in=keys)
    if present:
        query |= Q(call_id__in=present, left_at__isnull=True)
    for p in Participant.objects.filter(query):
        item = by_call[p.call_id]
        p.call = item.call
        item.rows.setdefault(p.graph_key, p)
    for item, missing, everyone in todo:
        item.present_loaded |= everyone
        item.absent |= {k for k in missing if k not in item.rows}


def changed_participants(
    items: list[CallWork], now: datetime
) -> tuple[list[Participant], list[str]]:
    """The stored participant rows the batch changed, and the fields any of them
    changed (``updated_at`` set to ``now`` on each), for one ``update_rows``."""
    rows: list[Participant] = []
    fields: set[str] = set()
    for item in items:
        for p in [*item.participants.values(), *item.left.values()]:
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
    if rows:
        fields.add("updated_at")
    return rows, sorted(fields)
