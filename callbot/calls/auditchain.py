"""The audit trail's hash chain, as pure functions over plain dicts.

Each entry carries ``entry_hash``, the SHA-256 of its canonical content (the
fields of ``CONTENT_FIELDS`` plus its ``sequence`` and ``prev_hash``), and
``prev_hash``, the previous entry's ``entry_hash`` (``GENESIS`` for the first).
A checkpoint is a signed statement "entry #n has hash h" (``auditseal``).

``ChainWalker`` checks a stream of entries in sequence order against the
checkpoints and names the first entry that was edited, deleted, inserted or
reordered. It works on dicts, so the database (``auditverify``) and an exported
file (JSON Lines, offline, with only the public key) are checked alike.

Imports nothing of Django's models or ours: the rows are the callers' business.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

GENESIS = "0" * 64
# What an entry's hash covers besides ``sequence`` and ``prev_hash``.
CONTENT_FIELDS = (
    "actor_id",
    "actor_name",
    "by_bot",
    "action",
    "target",
    "call_id",
    "action_ref",
    "outcome",
    "detail",
    "client_ip",
    "created_at",
)
# An entry that fails its hash is tried at this many positions either side, to
# tell an entry moved (reordered, or renumbered over a deletion or insertion)
# from one whose content was changed.
MOVE_WINDOW = 16


def canonical_time(value: datetime | str) -> str:
    """UTC ISO-8601 with microseconds: the one spelling of a time in a hash."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_detail(detail: Any) -> Any:
    """``detail`` as the JSON column gives it back (tuples as lists, keys as
    strings, times as ISO strings): what is hashed is what is stored."""
    return json.loads(json.dumps(detail or {}, cls=DjangoJSONEncoder))


def canonical_ip(value: str | None) -> str | None:
    """The address as the database spells it back; None for no or bad address."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def canonical_bytes(entry: Mapping[str, Any], sequence: int, prev_hash: str) -> bytes:
    content = {name: entry.get(name) for name in CONTENT_FIELDS}
    content["created_at"] = canonical_time(entry["created_at"])
    content["detail"] = canonical_detail(entry.get("detail"))
    content["sequence"] = sequence
    content["prev_hash"] = prev_hash
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def entry_hash(
    entry: Mapping[str, Any],
    sequence: int | None = None,
    prev_hash: str | None = None,
) -> str:
    """The SHA-256 (hex) of the entry's canonical content, at its own sequence and
    prev_hash unless others are given."""
    seq = entry["sequence"] if sequence is None else sequence
    prev = entry["prev_hash"] if prev_hash is None else prev_hash
    return hashlib.sha256(canonical_bytes(entry, seq, prev)).hexdigest()


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with the chain. ``kind`` is one of edited, deleted,
    inserted, reordered, checkpoint."""

    kind: str
    sequence: int | None
    entry_id: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _name(entry: Mapping[str, Any]) -> str:
    return f"entry #{entry['sequence']} (id {entry.get('id')})"


class ChainWalker:
    """Feed entries in ascending ``sequence`` with ``add``; then ``finish``.

    ``checkpoints`` maps a sealed sequence to its head hash (signatures are
    checked before, by ``auditseal``). The walk keeps two entries in memory.
    A first entry other than #1 (a purged prefix) must be anchored: a checkpoint
    sealing the sequence just before it, whose hash is its ``prev_hash``.
    """

    def __init__(self, checkpoints: Mapping[int, str]) -> None:
        self.checkpoints = dict(checkpoints)
        self.problem: Problem | None = None
        self.count = 0
        self.first: int | None = None
        self.last: Mapping[str, Any] | None = None
        self._pending: Mapping[str, Any] | None = None

    def add(self, entry: Mapping[str, Any]) -> bool:
        """Take the next entry; False once a problem was found (stop feeding)."""
        if self.problem is not None:
            return False
        if self._pending is not None:
            self._check(self._pending, entry)
        self._pending = entry
        return self.problem is None

    def finish(self) -> Problem | None:
        """Check the last entry and that no sealed entry is missing at the end."""
        if self.problem is None and self._pending is not None:
            self._check(self._pending, None)
            self._pending = None
        if self.problem is None:
            head = self.last["sequence"] if self.last is not None else 0
            beyond = [s for s in self.checkpoints if s > head]
            if beyond:
                sealed = max(beyond)
                self.problem = Problem(
                    "deleted",
                    head + 1,
                    None,
                    f"entries #{head + 1} to #{sealed} are missing: a signed "
                    f"checkpoint sealed the chain up to #{sealed}, the last entry is "
                    f"#{head}",
                )
        return self.problem

    def _check(
        self, entry: Mapping[str, Any], following: Mapping[str, Any] | None
    ) -> None:
        seq = int(entry["sequence"])
        expected_prev, expected_seq = self._expected(entry)
        if self.problem is not None:
            return
        if entry_hash(entry) != entry["entry_hash"]:
            self.problem = self._misfit(entry, following)
            return
        if seq > expected_seq:
            self.problem = Problem(
                "deleted",
                expected_seq,
                entry.get("id"),
                f"entries #{expected_seq} to #{seq - 1} are missing (deleted): the "
                f"chain goes from #{expected_seq - 1} to {_name(entry)}",
            )
            return
        if seq < expected_seq:
            self.problem = Problem(
                "inserted",
                seq,
                entry.get("id"),
                f"{_name(entry)} repeats a sequence already in the chain (inserted)",
            )
            return
        if entry["prev_hash"] != expected_prev:
            self.problem = Problem(
                "inserted",
                seq,
                entry.get("id"),
                f"{_name(entry)} does not follow entry #{seq - 1}: its prev_hash "
                "names another entry (inserted, or its neighbour replaced)",
            )
            return
        sealed = self.checkpoints.get(seq)
        if sealed is not None and sealed != entry["entry_hash"]:
            self.problem = Problem(
                "checkpoint",
                seq,
                entry.get("id"),
                f"{_name(entry)} is not the entry a signed checkpoint sealed at "
                f"#{seq}: the chain was rewritten up to here",
            )
            return
        self.count += 1
        self.last = entry

    def _expected(self, entry: Mapping[str, Any]) -> tuple[str, int]:
        if self.last is not None:
            return str(self.last["entry_hash"]), int(self.last["sequence"]) + 1
        seq = int(entry["sequence"])
        self.first = seq
        if seq == 1:
            return GENESIS, 1
        anchor = self.checkpoints.get(seq - 1)
        if anchor is None:
            self.problem = Problem(
                "deleted",
                1,
                entry.get("id"),
                f"entries #1 to #{seq - 1} are missing and no signed checkpoint "
                f"seals them: the chain starts at {_name(entry)}",
            )
            return "", seq
        return anchor, seq

    def _misfit(
        self, entry: Mapping[str, Any], following: Mapping[str, Any] | None
    ) -> Problem:
        """An entry whose hash fails: changed, or moved from another position.

        A moved entry still hashes right at the sequence it was written at. When
        the entry after it moved by the same amount, the rows were renumbered
        (over a deletion when they moved down, an insertion when they moved up);
        otherwise the order itself was changed.
        """
        seq = int(entry["sequence"])
        written_at = _written_at(entry)
        if written_at is None:
            return Problem(
                "edited",
                seq,
                entry.get("id"),
                f"{_name(entry)} was edited: its content no longer matches its hash",
            )
        ident = f"the entry now at #{seq} (id {entry.get('id')})"
        shifted = following is not None and entry_hash(
            following, sequence=int(following["sequence"]) + written_at - seq
        ) == following.get("entry_hash")
        if not shifted and following is not None:
            return Problem(
                "reordered",
                seq,
                entry.get("id"),
                f"{ident} was written as #{written_at}: the order was changed",
            )
        if written_at < seq:
            first = self.last if seq - written_at == 1 else None
            return Problem(
                "inserted",
                written_at,
                first.get("id") if first is not None else None,
                f"entry #{written_at} (id {first.get('id') if first else '?'}) was "
                f"inserted: {ident} was written as #{written_at}, so "
                f"{seq - written_at} entries were put in before it and the rest "
                "renumbered",
            )
        return Problem(
            "deleted",
            seq,
            entry.get("id"),
            f"entries #{seq} to #{written_at - 1} were deleted and the rest "
            f"renumbered: {ident} was written as #{written_at}",
        )


def _written_at(entry: Mapping[str, Any]) -> int | None:
    """The other sequence (within ``MOVE_WINDOW``) at which the entry's hash holds."""
    seq = int(entry["sequence"])
    for offset in range(1, MOVE_WINDOW + 1):
        for candidate in (seq - offset, seq + offset):
            if (
                candidate > 0
                and entry_hash(entry, sequence=candidate) == entry["entry_hash"]
            ):
                return candidate
    return None
