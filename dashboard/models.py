"""The dashboard's own rows: which Callbot user a Microsoft account signs in as."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class MicrosoftAccount(models.Model):
    """A person of the bot's Entra ID tenant, linked to the Callbot user they sign
    in as (made at their first sign-in). Keyed by the immutable object id, never
    the name: a renamed account stays the same user, and no local account is ever
    taken over by a Microsoft account that shares its name."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="microsoft_account",
    )
    object_id = models.CharField(max_length=64, unique=True)
    tenant_id = models.CharField(max_length=64)
    username = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Microsoft account"

    def __str__(self) -> str:
        return self.username or self.object_id
