"""``Authorization: Token <key>``: DRF's token scheme over digests of the keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from callbot.api.models import ApiToken, token_digest

# ``last_used_at`` is written at most this often per token, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


class ApiTokenAuthentication(TokenAuthentication):
    """A user's API token; the request then acts with that user's roles.

    A missing, unknown or revoked key, or one of an inactive user, is 401 (the
    same answer for each, so keys cannot be probed).
    """

    keyword = "Token"
    model = ApiToken

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Any]:
        token = (
            ApiToken.objects.select_related("user")
            .filter(digest=token_digest(key))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
