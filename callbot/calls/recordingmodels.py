"""``Recording``: the audio a caller recorded, kept as a file.

Written by ``upkeep`` (fetched from Graph); served by the call page to those who may
hear it. Imports nothing of ours, so ``models`` can re-export it.

A recording belongs to its call and goes with it: deleting the call (retention,
or anything else) deletes the recording's row and, once that commits, its audio
file. Nothing serves a recording whose call is gone (docs/audit.md).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

logger = logging.getLogger(__name__)


class Recording(models.Model):
    """The audio a caller recorded (``recordResponse``), fetched from Graph at once:
    Graph discards it shortly after the call ends."""

    action = models.OneToOneField(
        "calls.Action", on_delete=models.CASCADE, related_name="recording"
    )
    call = models.ForeignKey(
        "calls.Call",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="recordings",
    )
    audio = models.FileField(upload_to="recordings/%Y/%m/%d/")
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        # Hearing what a caller said is a right of its own (dashboard.permissions).
        permissions = [
            ("listen_recording", "Can listen to and download call recordings")
        ]

    def __str__(self) -> str:
        return f"recording {self.pk} of {self.call_id}"


@receiver(post_delete, sender=Recording, dispatch_uid="recording_audio_file")
def _delete_audio(sender: type[Recording], instance: Recording, **kwargs: Any) -> None:
    """The audio file goes when the row does, after the transaction commits (a
    rollback keeps both)."""
    name = instance.audio.name
    if not name:
        return

    def delete() -> None:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete a deleted recording's file %s", name)

    transaction.on_commit(delete)
