"""API tokens and outbound webhooks: endpoints, deliveries and each attempt.

A token is stored as its SHA-256 digest: the key itself is shown once, when it is
made (the admin or ``manage.py api_token``), and cannot be read back. Webhook rows
are written by ``webhooks.py`` (queue, attempt); the admin only reads deliveries.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

# What a key looks like: a prefix saying what it is, then 40 URL-safe characters.
TOKEN_PREFIX = "cbt_"  # noqa: S105 (a label, not a secret)
SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_token_key() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(30)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class ApiToken(models.Model):
    """One API key of a user; it acts with that user's roles. Revoked = deleted."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # The key's first characters, to tell keys apart in lists and logs.
    prefix = models.CharField(max_length=12, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class WebhookEvent(models.TextChoices):
    CALL_STARTED = "call.started", "Call started"
    CALL_ENDED = "call.ended", "Call ended"
    ACTION_COMPLETED = "action.completed", "Action completed"
    ACTION_FAILED = "action.failed", "Action failed"
    ALERT_RAISED = "alert.raised", "Alert raised"


class WebhookEndpoint(models.Model):
    """A URL an admin registered, with the events it wants."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=255, blank=True)
    events = models.JSONField(
        default=list,
        help_text="Event types to send: " + ", ".join(WebhookEvent.values),
    )
    secret = models.CharField(max_length=100, default=new_webhook_secret)
    # The secret before the last rotation, which signs beside the new one until
    # ``previous_secret_until`` so the receiver can switch without a gap.
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the
        previous one while its overlap lasts (a signature each, Standard Webhooks'
        space-separated list)."""
        kept = (
            self.previous_secret_until is not None and self.previous_secret_until > now
        )
        return (
            [self.secret, self.previous_secret]
            if kept and self.previous_secret
            else [self.secret]
        )

    def rotate_secret(self, overlap: timedelta, now: datetime) -> None:
        """A new secret; the old one keeps signing beside it for ``overlap``."""
        self.previous_secret = self.secret
        self.previous_secret_until = now + overlap
        self.secret = new_webhook_secret()
        self.save(update_fields=["secret", "previous_secret", "previous_secret_until"])

    def wants(self, event: str) -> bool:
        return self.enabled and event in (self.events or [])


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint: the exact body sent on every attempt."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # ``webhook-id``: the same on every attempt, so receivers can deduplicate.
    message_id = models.CharField(max_length=64, unique=True, editable=False)
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    # What the event is about ("call.started:42"): each endpoint hears of it once,
    # however many times the domain announces it (a redelivered notification).
    subject = models.CharField(max_length=100, blank=True)
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"], name="webhook_delivery_due"
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "subject"],
                condition=~models.Q(subject=""),
                name="webhook_delivery_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.message_id:
            self.message_id = f"msg_{uuid.uuid4().hex}"
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class WebhookAttempt(models.Model):
    """One try at a delivery: when, and what the receiver said (or why none)."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhook_attempt_once"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
