"""Verifying the audit trail: the database's, or an exported file's.

Both read a stream of entries in sequence order plus the signed checkpoints,
check every checkpoint's signature with the public key, then walk the chain
(``auditchain.ChainWalker``) and name the first entry edited, deleted, inserted
or reordered. Memory stays constant in the number of entries (the checkpoints
are held as a small dict: one per sealing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from callbot.calls import auditchain, auditseal
from callbot.calls.auditchain import Problem
from callbot.calls.auditmodels import AuditCheckpoint, AuditEntry

EXPORT_FORMAT = "callbot-audit-v1"
CHUNK = 2000


class ExportFormatError(ValueError):
    """The file is not an audit export this version can read."""


@dataclass(frozen=True)
class Report:
    entries: int
    checkpoints: int
    first: int | None
    last: int | None
    problem: Problem | None
    # A filtered export: each entry is checked on its own, not the chain.
    filtered: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.problem is not None:
            return f"FAILED: {self.problem}"
        if self.entries == 0:
            return f"OK: no entries; {self.checkpoints} checkpoints verified"
        span = f"#{self.first} to #{self.last}"
        if self.filtered:
            return (
                f"OK: {self.entries} entries ({span}) each match their hash; "
                f"{self.checkpoints} checkpoints verified. A filtered export: "
                "the chain between them cannot be checked"
            )
        return (
            f"OK: {self.entries} entries ({span}) form an unbroken chain; "
            f"{self.checkpoints} checkpoints verified"
        )


def verify(
    entries: Iterable[Mapping[str, Any]],
    checkpoints: Iterable[Mapping[str, Any]],
    public: Ed25519PublicKey | Sequence[Ed25519PublicKey],
    *,
    filtered: bool = False,
) -> Report:
    """Check the checkpoints' signatures, then the entries in sequence order."""
    sealed: dict[int, str] = {}
    count = 0
    for checkpoint in checkpoints:
        count += 1
        why = auditseal.signature_problem(checkpoint, public)
        if why is not None:
            return Report(
                0,
                count,
                None,
                None,
                Problem("checkpoint", int(checkpoint["sequence"]), None, why),
            )
        seq = int(checkpoint["sequence"])
        if sealed.get(seq, checkpoint["head_hash"]) != checkpoint["head_hash"]:
            return Report(
                0,
                count,
                None,
                None,
                Problem(
                    "checkpoint",
                    seq,
                    None,
                    f"two signed checkpoints give entry #{seq} different hashes",
                ),
            )
        sealed[seq] = str(checkpoint["head_hash"])
    if filtered:
        return _verify_each(entries, count)
    walker = auditchain.ChainWalker(sealed)
    for entry in entries:
        if not walker.add(entry):
            break
    problem = walker.finish()
    return Report(
        walker.count,
        count,
        walker.first,
        walker.last["sequence"] if walker.last else None,
        problem,
    )


def _verify_each(entries: Iterable[Mapping[str, Any]], checkpoints: int) -> Report:
    first = last = None
    n = 0
    for entry in entries:
        if auditchain.entry_hash(entry) != entry["entry_hash"]:
            problem = Problem(
                "edited",
                int(entry["sequence"]),
                entry.get("id"),
                f"entry #{entry['sequence']} (id {entry.get('id')}) was edited: "
                "its content no longer matches its hash",
            )
            return Report(n, checkpoints, first, last, problem, filtered=True)
        n += 1
        first = first or int(entry["sequence"])
        last = int(entry["sequence"])
    return Report(n, checkpoints, first, last, None, filtered=True)


# --- the database ----------------------------------------------------------------------


def database_entries(
    queryset: Any = None, *, up_to: int | None = None
) -> Iterator[dict[str, Any]]:
    """Entries in ascending sequence, fetched in chunks (keyset on ``sequence``)."""
    rows = AuditEntry.objects.all() if queryset is None else queryset
    if up_to is not None:
        rows = rows.filter(sequence__lte=up_to)
    after = -1
    while True:
        chunk = list(rows.filter(sequence__gt=after).order_by("sequence")[:CHUNK])
        for entry in chunk:
            yield entry.content()
        if len(chunk) < CHUNK:
            return
        after = chunk[-1].sequence


def database_checkpoints(up_to: int | None = None) -> Iterator[dict[str, Any]]:
    """Checkpoints in sequence order; ``up_to`` leaves out those sealing later
    entries (an export that stops at its own checkpoint)."""
    rows = AuditCheckpoint.objects.order_by("sequence", "id")
    if up_to is not None:
        rows = rows.filter(sequence__lte=up_to)
    for checkpoint in rows.iterator():
        yield checkpoint.content()


def verify_database(
    public: Ed25519PublicKey | Sequence[Ed25519PublicKey] | None = None,
) -> Report:
    """Walk the whole trail in the database (the keys default to the signing key
    and the previous ones: ``auditseal.trusted_keys``)."""
    keys = public if public is not None else auditseal.trusted_keys()
    return verify(database_entries(), database_checkpoints(), keys)


# --- an exported file ------------------------------------------------------------------


def verify_file(
    lines: Iterable[str], public: Ed25519PublicKey | Sequence[Ed25519PublicKey]
) -> Report:
    """Verify an export (``auditexport.jsonl_lines``) with the public keys alone
    (each checkpoint is checked with the key it names).

    Raises ``ExportFormatError`` for a file that is not such an export.
    """
    stream = iter(enumerate(lines, start=1))
    header = _record(next(stream, (1, "")))
    if header.get("type") != "header" or header.get("format") != EXPORT_FORMAT:
        raise ExportFormatError(
            f"line 1: not a Callbot audit export (expected a {EXPORT_FORMAT} header)"
        )
    checkpoints: list[dict[str, Any]] = []
    first_entry: dict[str, Any] | None = None
    for number, line in stream:
        if not line.strip():
            continue
        record = _record((number, line))
        if record.get("type") == "checkpoint":
            checkpoints.append(record)
            continue
        if record.get("type") != "entry":
            raise ExportFormatError(f"line {number}: unknown record type")
        first_entry = record
        break

    def entries() -> Iterator[dict[str, Any]]:
        if first_entry is None:
            return
        yield first_entry
        for number, line in stream:
            if not line.strip():
                continue
            record = _record((number, line))
            if record.get("type") != "entry":
                raise ExportFormatError(
                    f"line {number}: checkpoints come before the entries"
                )
            yield record

    return verify(entries(), checkpoints, public, filtered=bool(header.get("filtered")))


def _record(numbered: tuple[int, str]) -> dict[str, Any]:
    number, line = numbered
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ExportFormatError(f"line {number}: not JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ExportFormatError(f"line {number}: not a JSON object")
    needed = {
        "entry": ("sequence", "prev_hash", "entry_hash", "created_at"),
        "checkpoint": ("sequence", "head_hash", "signature", "key_id", "created_at"),
    }.get(str(record.get("type")), ())
    missing = [name for name in needed if name not in record]
    if missing:
        raise ExportFormatError(f"line {number}: missing {', '.join(missing)}")
    return record
