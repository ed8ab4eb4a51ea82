"""``ParticipantChange``: the roster over time, one row per change ingest applied.

Written by ingest (``callwork.CallWork.note_change``, one bulk insert per batch);
read by the call page. Imports nothing of ours, so ``models`` can re-export it.
"""

from __future__ import annotations

from django.db import models


class ParticipantChange(models.Model):
    """One change of a participant as ingest applied it: joined, left, came back, or
    a change of mute, hold, screen sharing, lobby, role or name. Append-only; an
    ended call's roster as it was, over time, is read from these rows."""

    class Event(models.TextChoices):
        JOINED = "joined"
        CHANGED = "changed"
        LEFT = "left"
        REJOINED = "rejoined"

    call = models.ForeignKey(
        "calls.Call", on_delete=models.CASCADE, related_name="participant_changes"
    )
    participant = models.ForeignKey(
        "calls.Participant", on_delete=models.CASCADE, related_name="changes"
    )
    at = models.DateTimeField()
    event = models.CharField(max_length=16, choices=Event.choices)
    # {field: [old, new]} for the fields in ``rosterlog.TRACKED``; on joining, the
    # flags that started true ([null, true]); on leaving, the removed reason.
    changes = models.JSONField(default=dict, blank=True)
    # The action that caused it, where ingest knows (a hold the bot asked for).
    cause = models.ForeignKey(
        "calls.Action",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="participant_changes",
    )

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # The call page: a call's changes in time order, and keyset pages of them.
            models.Index(
                fields=["call", "at", "id"], name="participant_change_call_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.participant_id} at {self.at}"
