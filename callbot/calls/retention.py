"""Retention: dropping old call content while the audit chain stays verifiable.

``purge`` deletes ended calls (with their participants, events, actions and
recordings, files included), stray events and quarantined notifications older
than a date, and optionally the audit entries older than another date. The
entries go only as a prefix of the chain and only once a signed checkpoint
seals the last of them, so ``verify_audit`` still checks the chain from the
first remaining entry, anchored by that checkpoint. The purge itself is an
audit entry, written after.

Run by ``manage.py purge`` and daily by beat (``CALL_RETENTION_DAYS``,
``AUDIT_RETENTION_DAYS``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import connection, transaction

from callbot.calls import audit, auditseal
from callbot.calls.access import Actor
from callbot.calls.models import (
    AuditCheckpoint,
    AuditEntry,
    Call,
    CallEvent,
    QuarantinedNotification,
    Recording,
)
from callbot.calls.states import CallState

PURGE_ACTION = "purge"


@dataclass(frozen=True)
class PurgeResult:
    before: str
    audit_before: str | None
    calls: int
    events: int
    quarantined: int
    recordings: int
    # Audit entries #first_purged..#sealed_to were (or would be) removed.
    audit_entries: int
    sealed_to: int | None
    checkpoint_id: int | None
    dry_run: bool


def purge(
    before: datetime,
    *,
    audit_before: datetime | None = None,
    dry_run: bool = False,
    actor: Actor = None,
) -> PurgeResult:
    """Delete call content older than ``before`` and audit entries older than
    ``audit_before`` (None keeps the whole trail); one transaction.

    1. Pick the ended calls (``terminated_at`` before the date), stray events
       and quarantined notifications; count, then delete them (recording files
       after commit).
    2. The audit prefix: entries before the first one written at or after
       ``audit_before``. Seal its last entry with a checkpoint (reason
       ``purge``), then delete the prefix; on PostgreSQL the append-only
       trigger lets this one transaction (``callbot.audit_purge``) delete
       entries sealed by a checkpoint, and nothing else.
    3. Audit the purge, with what went.

    Raises ``auditseal.AuditKeyError`` when entries are to go but no key can
    sign the checkpoint (then nothing is deleted).
    """
    calls = Call.objects.filter(
        state=CallState.TERMINATED, terminated_at__lt=before
    ).order_by()
    events = CallEvent.objects.filter(call__in=calls) | CallEvent.objects.filter(
        call__isnull=True, received_at__lt=before
    )
    quarantined = QuarantinedNotification.objects.filter(received_at__lt=before)
    recordings = Recording.objects.filter(action__call__in=calls)
    with transaction.atomic():
        sealed_to, first = _audit_prefix(audit_before)
        counts = {
            "calls": calls.count(),
            "events": events.count(),
            "quarantined": quarantined.count(),
            "recordings": recordings.count(),
        }
        purged = max(0, sealed_to - first + 1) if sealed_to is not None else 0
        checkpoint = None
        if not dry_run:
            # Recordings go with their calls' actions; their files once this
            # commits (``recordingmodels``).
            events.delete()
            calls.delete()
            quarantined.delete()
            if purged and sealed_to is not None:
                checkpoint = auditseal.seal(
                    AuditCheckpoint.Reason.PURGE, sequence=sealed_to
                )
                _delete_audit_prefix(sealed_to)
        result = PurgeResult(
            before=before.isoformat(),
            audit_before=audit_before.isoformat() if audit_before else None,
            audit_entries=purged,
            sealed_to=sealed_to if purged else None,
            checkpoint_id=checkpoint.pk if checkpoint is not None else None,
            dry_run=dry_run,
            **counts,
        )
        if not dry_run:
            audit.record(
                actor,
                PURGE_ACTION,
                f"content before {result.before}",
                outcome="purged",
                detail=asdict(result),
            )
    return result


def _audit_prefix(audit_before: datetime | None) -> tuple[int | None, int]:
    """(last sequence to purge, first sequence present); None: nothing to purge."""
    first = AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True)
    first_seq = first.first()
    if audit_before is None or first_seq is None:
        return None, 0
    kept = (
        AuditEntry.objects.filter(created_at__gte=audit_before)
        .order_by("sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    if kept is None:
        last = AuditEntry.objects.order_by("-sequence").values_list(
            "sequence", flat=True
        )
        return last.first(), first_seq
    if kept <= first_seq:
        return None, first_seq
    return kept - 1, first_seq


def _delete_audit_prefix(sealed_to: int) -> None:
    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL callbot.audit_purge = 'on'")
        # Raw SQL: the model refuses deletes; this is the one sanctioned path.
        cursor.execute(
            f"DELETE FROM {table} WHERE sequence <= %s",  # noqa: S608 (our table name)
            [sealed_to],
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL callbot.audit_purge = 'off'")
