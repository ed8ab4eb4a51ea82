"""``Recording``: the audio a caller recorded, kept as a file.

Written by ``upkeep`` (fetched from Graph); served by the call page to those who may
hear it. Imports nothing of ours, so ``models`` can re-export it.
"""

from __future__ import annotations

from django.db import models


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
        on_delete=models.SET_NULL,
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
