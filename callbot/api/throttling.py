"""Rate limits per token (DRF throttling): a token, a signed-in browser and an
anonymous address each have their own bucket; over it, 429 with Retry-After."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from callbot.api.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    """``API_RATE_PER_MINUTE`` per token or session user, ``API_ANON_RATE_PER_MINUTE``
    per address for requests without credentials. The counts live in the
    ``API_THROTTLE_CACHE`` cache (Redis when configured: shared by web processes)."""

    scope = "api"

    def __init__(self) -> None:
        self.cache = caches[settings.API_THROTTLE_CACHE]
        super().__init__()

    def get_rate(self) -> str:
        # Read on every request (not frozen at import as DRF's rate table is).
        if self.scope == "api-anon":
            return f"{settings.API_ANON_RATE_PER_MINUTE}/min"
        return f"{settings.API_RATE_PER_MINUTE}/min"

    def allow_request(self, request: Request, view: Any) -> bool:
        # The scope, and so the rate, depends on who asks.
        self.scope = "api" if request.user.is_authenticated else "api-anon"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        if isinstance(request.auth, ApiToken):
            ident = f"token:{request.auth.pk}"
        elif request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"
