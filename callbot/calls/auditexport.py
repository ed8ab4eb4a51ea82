"""Exports of the audit trail: JSON Lines (verifiable offline) and CSV.

Both are generators of text blocks, one per chunk of entries read by keyset on
``sequence``, so an export of any size runs in constant memory; the dashboard
streams them and ``manage.py export_audit`` writes them to a file.

A JSON Lines export is: a header line, every signed checkpoint, then the entries
in sequence order. An unfiltered export first seals the chain's head with a
checkpoint (reason ``export``) and stops at it, so the whole file is sealed;
``manage.py verify_audit --file F --public-key K`` checks it with the public key
alone. A filtered export is marked ``"filtered": true``: each entry still proves
its own content, but the chain between entries cannot be checked.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from callbot.calls import auditseal, auditverify
from callbot.calls.auditmodels import AuditCheckpoint, AuditEntry

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "sequence",
    "created_at",
    "actor_name",
    "by_bot",
    "action",
    "target",
    "outcome",
    "call_id",
    "action_ref",
    "client_ip",
    "detail",
    "prev_hash",
    "entry_hash",
)
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Progress = Callable[[int], None]


# The trail's "by" filter: whose acts, by the entries' ``by_bot``.
BY = {"people": False, "bot": True}


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page and ``export_audit`` narrow the trail by; empty
    fields do not filter. Dates are days in the current time zone, inclusive."""

    actor: str = ""
    # "people": acts of signed-in people (and admin changes); "bot": the bot's own
    # (IVR, policies, upkeep). An auditor's question is mostly the first, which
    # the bot's many entries would otherwise bury.
    by: str = ""
    action: str = ""
    outcome: str = ""
    call_id: int | None = None
    since: date | None = None
    until: date | None = None

    @property
    def active(self) -> bool:
        return any(
            v not in ("", None)
            for v in (
                self.actor,
                self.by,
                self.action,
                self.outcome,
                self.call_id,
                self.since,
                self.until,
            )
        )

    def entries(self) -> Any:
        """The matching entries (a queryset; order it as needed)."""
        rows = AuditEntry.objects.all()
        if self.actor:
            rows = rows.filter(actor_name__iexact=self.actor)
        if self.by in BY:
            rows = rows.filter(by_bot=BY[self.by])
        if self.action:
            rows = rows.filter(action=self.action)
        if self.outcome:
            rows = rows.filter(outcome=self.outcome)
        if self.call_id is not None:
            rows = rows.filter(call_id=self.call_id)
        if self.since is not None:
            rows = rows.filter(created_at__gte=_day_start(self.since))
        if self.until is not None:
            rows = rows.filter(created_at__lt=_day_start(self.until + timedelta(1)))
        return rows


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, cls=DjangoJSONEncoder, ensure_ascii=False) + "\n"


def seal_for_export() -> int | None:
    """Seal the head for an export; the sequence the export stops at (None: the
    signing key is missing, the export goes on unsealed and says so)."""
    try:
        checkpoint = auditseal.seal(AuditCheckpoint.Reason.EXPORT)
    except auditseal.AuditKeyError:
        logger.warning("audit export without a fresh checkpoint: no signing key")
        return None
    if checkpoint is None:
        return 0
    return int(checkpoint.sequence)


def jsonl_lines(
    queryset: Any = None,
    *,
    filtered: bool = False,
    progress: Progress | None = None,
) -> Iterator[str]:
    """The export, block by block. ``queryset`` narrows the entries (filtered)."""
    sealed_to = seal_for_export() if not filtered else None
    yield _dumps(
        {
            "type": "header",
            "format": auditverify.EXPORT_FORMAT,
            "exported_at": timezone.now().isoformat(),
            "filtered": filtered,
            "sealed_to": sealed_to,
        }
    )
    # A periodic checkpoint written meanwhile seals entries this file stops short of.
    block = [
        _dumps({"type": "checkpoint", **c})
        for c in auditverify.database_checkpoints(up_to=sealed_to or None)
    ]
    yield "".join(block)
    done = 0
    for chunk in _chunks(
        auditverify.database_entries(queryset, up_to=sealed_to or None)
    ):
        done += len(chunk)
        yield "".join(_dumps({"type": "entry", **entry}) for entry in chunk)
        if progress is not None:
            progress(done)


def csv_lines(
    queryset: Any = None, *, progress: Progress | None = None
) -> Iterator[str]:
    """The entries as CSV, header first; cells a spreadsheet would run as a
    formula get a leading apostrophe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield _take(buffer)
    done = 0
    for chunk in _chunks(auditverify.database_entries(queryset)):
        for entry in chunk:
            writer.writerow([_cell(entry, name) for name in CSV_COLUMNS])
        done += len(chunk)
        yield _take(buffer)
        if progress is not None:
            progress(done)


def _cell(entry: dict[str, Any], name: str) -> Any:
    value = entry[name]
    if name == "detail":
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _chunks(entries: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= auditverify.CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
