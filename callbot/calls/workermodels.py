"""Worker heartbeats: when each Celery worker last ran beat's heartbeat task.

Imported by ``models.py`` so the model belongs to the calls app; imports nothing
of ours. ``workerhealth.py`` writes these rows; everything else reads.
"""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per worker (its Celery hostname), stamped each time it runs
    ``callbot.calls.worker_heartbeat``; rows of workers gone for a day are pruned."""

    worker = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.worker} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
