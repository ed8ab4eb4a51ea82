"""Alert rows: the thresholds admins set, and the alerts raised for supervisors.

Imported by ``models.py`` so the models belong to the calls app; names the call by
``"calls.Call"`` and imports nothing of ours but the contract's limits, so ``models.py`` may import it.
``alerts.py`` writes these rows; everything else reads.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from callbot.graph.limits import ANSWER_WINDOW_SECONDS


class AlertKind(models.TextChoices):
    RINGING_LONG = "ringing_long", "Call ringing too long"
    ACTION_FAILED = "action_failed", "Action failed"
    BOT_DROPPED = "bot_dropped", "Bot dropped from a call"
    SILENT_CALL = "silent_call", "No notification for a live call"
    KEEP_ALIVE_FAILED = "keep_alive_failed", "keepAlive failed"
    WORKER_DOWN = "worker_down", "No worker performing tasks"


# The default ringing threshold: with the default alert sweep (every 5 s) the
# alert is raised 8 to 13 s into the ring, before Teams ends it at 15 s.
RINGING_SECONDS = 8


def ringing_limit() -> int:
    """The longest ringing threshold that raises its alert before Teams ends an
    unanswered call, whatever the sweep's phase: threshold plus one sweep
    interval below the answer window (at least 1 s)."""
    return max(1, ANSWER_WINDOW_SECONDS - settings.ALERT_SWEEP_SECONDS - 1)


class AlertSettings(models.Model):
    """The alert rules' thresholds and switches: one row, edited in the admin."""

    ringing_enabled = models.BooleanField(
        "alert on calls ringing too long", default=True
    )
    ringing_seconds = models.PositiveIntegerField(
        "ringing threshold (seconds)",
        default=RINGING_SECONDS,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 3600)],
        help_text="An incoming call not answered after this long raises an alert. "
        f"Teams ends a call nobody answered after {ANSWER_WINDOW_SECONDS} s, so "
        "the threshold and the alert sweep (ALERT_SWEEP_SECONDS) together stay "
        "below that.",
    )
    silent_enabled = models.BooleanField(
        "alert on live calls without notifications", default=True
    )
    silent_minutes = models.PositiveIntegerField(
        "silence threshold (minutes)",
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="A live call Teams has said nothing about for this long raises an "
        "alert (checked when the call is reconciled with Graph).",
    )
    action_failed_enabled = models.BooleanField("alert on failed actions", default=True)
    bot_dropped_enabled = models.BooleanField(
        "alert when the bot is dropped from a call", default=True
    )
    keep_alive_failed_enabled = models.BooleanField(
        "alert when a keepAlive fails", default=True
    )
    worker_enabled = models.BooleanField(
        "alert when no worker performs tasks", default=True
    )
    worker_seconds = models.PositiveIntegerField(
        "worker threshold (seconds)",
        default=60,
        validators=[MinValueValidator(15), MaxValueValidator(3600)],
        help_text="No worker heartbeat for this long, or an action queued this "
        "long without a worker taking it, raises an alert and fails the worker "
        "check of /healthz's detail. More than the heartbeat interval "
        "(WORKER_HEARTBEAT_SECONDS, 10 s).",
    )
    expire_minutes = models.PositiveIntegerField(
        "show one-off alerts for (minutes)",
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="Failed actions and dropped bots stay on the board this long "
        "unless dismissed.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return "Alert settings"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.pk = 1  # one row: the admin edits it, nobody adds a second
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        highest = ringing_limit()
        if self.ringing_seconds is not None and self.ringing_seconds > highest:
            raise ValidationError(
                {
                    "ringing_seconds": (
                        f"At most {highest} s: Teams ends a call nobody answered "
                        f"after {ANSWER_WINDOW_SECONDS} s (its answer window), and "
                        f"the alert sweep runs every {settings.ALERT_SWEEP_SECONDS} "
                        "s; a longer threshold would never raise the alert."
                    )
                }
            )

    def enabled(self, kind: str) -> bool:
        """Whether alerts of ``kind`` are raised at all."""
        return {
            AlertKind.RINGING_LONG: self.ringing_enabled,
            AlertKind.SILENT_CALL: self.silent_enabled,
            AlertKind.ACTION_FAILED: self.action_failed_enabled,
            AlertKind.BOT_DROPPED: self.bot_dropped_enabled,
            AlertKind.KEEP_ALIVE_FAILED: self.keep_alive_failed_enabled,
            AlertKind.WORKER_DOWN: self.worker_enabled,
        }[AlertKind(kind)]


class Alert(models.Model):
    """Something on a call a person should look at. Open while ``cleared_at`` is
    null; at most one open alert per kind and call (a repeat bumps ``count``)."""

    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    call = models.ForeignKey(
        "calls.Call",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    # What the alert was about, in words, kept when the call row goes.
    call_label = models.CharField(max_length=255, blank=True)
    message = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=1)
    raised_at = models.DateTimeField()
    last_raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    # Why it was cleared: "resolved" by a rule, "expired", or who dismissed it.
    cleared_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "call"],
                condition=Q(cleared_at__isnull=True),
                name="alert_one_open_per_kind_and_call",
            ),
            # NULLs are distinct in the constraint above: alerts about no call
            # (worker down) need their own, or two web processes raise two.
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(cleared_at__isnull=True, call__isnull=True),
                name="alert_one_open_per_kind_without_call",
            ),
            models.CheckConstraint(
                condition=Q(last_raised_at__gte=models.F("raised_at")),
                name="alert_last_raised_after_raised",
            ),
        ]
        indexes = [
            # The board's banner and the rule sweep: open alerts.
            models.Index(
                fields=["-raised_at"],
                condition=Q(cleared_at__isnull=True),
                name="alert_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.call_label or self.call_id}"
