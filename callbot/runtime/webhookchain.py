"""What the Graph webhook's short ASGI chain runs (``WEBHOOK_MIDDLEWARE``,
``callbot.asgi.WebhookHandler``) without a thread hop."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware


class InlineSecurityMiddleware(SecurityMiddleware):
    """Django's ``SecurityMiddleware``, its two methods run on the event loop.

    Under ASGI Django's ``MiddlewareMixin`` runs ``process_request`` and
    ``process_response`` each through ``sync_to_async`` (a hop to a thread and
    back, ~0.3 ms of CPU each on a two-core machine). These two only read
    settings and the request and set headers (no I/O, no database), so here
    they run where the request is. The headers and the HTTPS redirect are
    Django's own."""

    async def __acall__(self, request: HttpRequest) -> Any:
        response: HttpResponse | None = self.process_request(request)
        if response is None:
            # Async here: Django calls __acall__ only in an async chain.
            pending = cast(Awaitable[HttpResponse], self.get_response(request))
            response = await pending
        return self.process_response(request, response)
