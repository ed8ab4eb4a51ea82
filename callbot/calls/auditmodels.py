"""The audit trail's rows: ``AuditEntry`` (hash-chained) and ``AuditCheckpoint``.

Both are append-only. Saving a new entry appends it to the chain under the
chain's lock, inside the caller's transaction: a rolled-back request leaves no
entry and no gap. Updating or deleting either through the ORM raises
``AuditImmutableError``; on PostgreSQL a trigger refuses it in the database too
(migration ``0007``), except for ``retention.purge`` below a sealed checkpoint.

References to users and calls carry no database constraint and are never
nulled: deleting a call or a user changes no entry (``actor_name`` keeps the
name). Imports ``auditchain`` only; ``models`` re-exports these classes.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from django.conf import settings
from django.db import connections, models, router, transaction
from django.utils import timezone

from callbot.calls import auditchain

# The PostgreSQL advisory lock that serialises appends ("callbot audit" in ASCII).
CHAIN_LOCK_KEY = 0x63616C6C626F7461


class AuditImmutableError(Exception):
    """An audit entry or checkpoint may not be changed or deleted."""


class _AppendOnlyQuerySet(models.QuerySet):  # type: ignore[type-arg]
    def update(self, **kwargs: Any) -> int:
        raise AuditImmutableError(f"{self.model.__name__} rows are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError(
            f"{self.model.__name__} rows are deleted only by purge"
        )

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise AuditImmutableError("audit rows are appended one by one (the chain)")


AppendOnlyManager = models.Manager.from_queryset(_AppendOnlyQuerySet)


def lock_chain(using: str) -> None:
    """Serialise appends until the transaction ends. SQLite's transactions take
    the write lock at BEGIN (``transaction_mode`` IMMEDIATE), which does the same."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_KEY])


class AuditEntry(models.Model):
    """Who did (or tried to do) what, to what, and how it came out. Append-only."""

    # No constraint and no SET NULL (an UPDATE): the entry outlives the user.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    # Kept as text so the trail survives the user's deletion; "callbot" for the bot.
    actor_name = models.CharField(max_length=150)
    # The bot acted (policy, IVR, beat), not a person.
    by_bot = models.BooleanField(default=False)
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255, blank=True)
    call = models.ForeignKey(
        "calls.Call",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_entries",
    )
    # The Action a request or its outcome is about (the request and its final
    # outcome share it).
    action_ref = models.PositiveBigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField()
    # Position in the chain: 1, 2, 3 ... without gaps.
    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    entry_hash = models.CharField(max_length=64, editable=False)

    objects: ClassVar[Any] = AppendOnlyManager()

    class Meta:
        ordering = ["-sequence"]
        verbose_name_plural = "audit entries"
        # Reading and exporting the whole trail (the /audit/ page); the Admin and
        # Auditor roles have it, the Supervisor role does not.
        permissions = [("read_audit_trail", "Can read and export the audit trail")]
        indexes = [
            models.Index(fields=["-created_at"], name="audit_created_idx"),
            models.Index(fields=["actor", "-sequence"], name="audit_actor_idx"),
            # The audit page's "By: people" (newest first past the bot's many).
            models.Index(fields=["by_bot", "-sequence"], name="audit_by_bot_idx"),
            models.Index(fields=["call", "-created_at"], name="audit_call_idx"),
            models.Index(fields=["action_ref"], name="audit_action_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} {self.target}: {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Append a new entry to the chain; an existing one is never saved again.

        1. Take the chain's lock (held until the caller's transaction ends).
        2. Read the head: the last entry, or the last checkpoint when a purge
           removed every entry, or the genesis.
        3. Stamp the time, normalise the content as the database returns it, and
           hash it with the next sequence and the head's hash.
        """
        if self.pk is not None:
            raise AuditImmutableError("audit entries are never updated")
        using = kwargs.get("using") or router.db_for_write(type(self))
        # Inside the caller's transaction no savepoint of its own: nothing goes
        # on after a failed append (the error leaves the caller's block, which
        # rolls back), and its SAVEPOINT and RELEASE were two round trips of
        # every audited request (an Answer's among them).
        with transaction.atomic(using=using, savepoint=False):
            lock_chain(using)
            sequence, prev = chain_head(using)
            self.created_at = timezone.now()
            self.detail = auditchain.canonical_detail(self.detail)
            self.client_ip = auditchain.canonical_ip(self.client_ip)
            self.sequence = sequence + 1
            self.prev_hash = prev
            self.entry_hash = auditchain.entry_hash(self.content())
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("audit entries are deleted only by purge")

    def content(self) -> dict[str, Any]:
        """The hashed fields and the chain fields, as plain JSON values."""
        return {
            "id": self.pk,
            "sequence": self.sequence,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "by_bot": self.by_bot,
            "action": self.action,
            "target": self.target,
            "call_id": self.call_id,
            "action_ref": self.action_ref,
            "outcome": self.outcome,
            "detail": self.detail,
            "client_ip": self.client_ip,
            "created_at": auditchain.canonical_time(self.created_at),
        }


class AuditCheckpoint(models.Model):
    """A signed statement: the chain's entry #``sequence`` has hash ``head_hash``
    (and ``entry_count`` entries were written up to it). Append-only."""

    class Reason(models.TextChoices):
        PERIODIC = "periodic"
        EXPORT = "export"
        PURGE = "purge"
        MANUAL = "manual"

    sequence = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    entry_count = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # Ed25519 over ``auditseal.signed_bytes``, base64.
    signature = models.CharField(max_length=128)
    # The first 16 hex digits of the SHA-256 of the raw public key.
    key_id = models.CharField(max_length=32)

    objects: ClassVar[Any] = AppendOnlyManager()

    class Meta:
        ordering = ["-sequence", "-id"]
        indexes = [models.Index(fields=["-sequence"], name="audit_checkpoint_seq_idx")]

    def __str__(self) -> str:
        return f"checkpoint #{self.sequence} ({self.reason})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AuditImmutableError("audit checkpoints are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditImmutableError("audit checkpoints are never deleted")

    def content(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "sequence": self.sequence,
            "head_hash": self.head_hash,
            "entry_count": self.entry_count,
            "created_at": auditchain.canonical_time(self.created_at),
            "reason": self.reason,
            "signature": self.signature,
            "key_id": self.key_id,
        }


def chain_head(using: str) -> tuple[int, str]:
    """(sequence, hash) of the chain's last entry; the caller holds the lock.

    Plain SQL, not querysets: every request and every final outcome appends an
    entry (five per answered IVR call), and building the two querysets cost
    Django more CPU than the database spent on them.
    """
    with connections[using].cursor() as cursor:
        for model, hash_column in (
            (AuditEntry, "entry_hash"),
            (AuditCheckpoint, "head_hash"),
        ):
            cursor.execute(_last_sql(using, model._meta.db_table, hash_column))
            row = cursor.fetchone()
            if row is not None:
                return int(row[0]), str(row[1])
    return 0, auditchain.GENESIS


@functools.lru_cache(maxsize=8)
def _last_sql(using: str, table: str, hash_column: str) -> str:
    """The statement reading the last (sequence, hash) row of ``table``."""
    quote = connections[using].ops.quote_name
    # Only our own quoted names are interpolated.
    return (
        f"SELECT {quote('sequence')}, {quote(hash_column)} "  # noqa: S608
        f"FROM {quote(table)} ORDER BY {quote('sequence')} DESC LIMIT 1"
    )
