"""``QuarantinedNotification``: what a batch held that could not be applied.

Written by the webhook (``quarantine.py``); read in the admin. Imports nothing of
ours, so ``models`` can re-export it.
"""

from __future__ import annotations

from django.db import models


class QuarantinedNotification(models.Model):
    """A notification of an authenticated batch that could not be applied, kept as
    received (made storable) with the reason. Append-only; the rest of its batch
    was applied without it."""

    class Reason(models.TextChoices):
        # Not the shape the contract describes (a string where an object belongs).
        MALFORMED = "malformed"
        # A value our columns cannot hold without changing its meaning (an id
        # longer than its column).
        UNSTORABLE = "unstorable"
        # Applying it raised an error of the database or of ours.
        FAILED = "failed"

    # The notification's identity (see Notification.digest): a redelivery is
    # recognised and not kept twice.
    digest = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    error = models.TextField()
    message_id = models.CharField(max_length=128, blank=True)
    # Position in its batch (``value[n]``).
    position = models.PositiveIntegerField()
    tenant_id = models.CharField(max_length=64, blank=True)
    change_type = models.CharField(max_length=16, blank=True)
    resource_url = models.TextField(blank=True)
    # The notification's JSON (text, not jsonb: whatever it holds can be kept).
    payload = models.TextField()
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "position"]
        indexes = [
            models.Index(fields=["-received_at"], name="quarantine_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reason}: {self.resource_url or self.error}"[:120]
