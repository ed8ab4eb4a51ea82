"""``InboxBatch``: a notification batch the webhook stored and has not applied yet.

Written by the webhook in deferred mode (``WEBHOOK_APPLY = "deferred"``) and
deleted by the applier (``inbox.py``) in the transaction that applies it. Imports
nothing of ours, so ``models`` can re-export it.
"""

from __future__ import annotations

from django.db import models


class InboxBatch(models.Model):
    """A verified, parsed batch as received: the body's bytes and what its
    notifications' identities depend on (the message id), so applying it later
    stores exactly what applying it at once would have.

    Rows are applied in id order, which is arrival order: a batch is stored before
    it is answered, so one Graph sent after another was answered has a larger id
    (SQLite's ids are AUTOINCREMENT, never reused). A row that cannot be applied
    for anything but an outage keeps its ``error`` and is skipped from then on."""

    id = models.BigAutoField(primary_key=True)
    body = models.BinaryField()
    # Whole (CallEvent keeps 128 characters): a full roster's identity is
    # computed from it when the row is applied.
    message_id = models.TextField(blank=True)
    tenant_id = models.CharField(max_length=64, blank=True)
    notifications = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    # Set when applying it failed for a reason a retry would meet again (and its
    # notifications could not even be quarantined); the applier skips it.
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "inbox batch"
        verbose_name_plural = "inbox batches"

    def __str__(self) -> str:
        return f"inbox batch {self.pk} ({self.notifications} notifications)"
