"""ASGI entry point: HTTP through Django, websockets through the dashboard's routes.

Websockets pass the allowed-hosts origin check (no cross-site socket can ride a
session cookie) and read their session and user (``dashboard.routing``,
``dashboard.socketauth``: the consumer sees ``scope["user"]``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
# Django must be set up before anything imports models (the websocket routes do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from callbot.calls import ingestthreads  # noqa: E402
from callbot.celery import app as celery_app  # noqa: E402
from callbot.runtime import inprocess  # noqa: E402
from callbot.runtime.collector import freeze_startup  # noqa: E402
from dashboard import routing  # noqa: E402

# Import every task module now, in one thread: finalized lazily, the first
# requests to send tasks from several threads at once would import the same
# modules together and could deadlock on the import locks.
celery_app.finalize()

from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.urls import reverse  # noqa: E402

from asgiref.sync import ThreadSensitiveContext  # noqa: E402


class WebhookHandler(ASGIHandler):
    """Django's ASGI handler with ``WEBHOOK_MIDDLEWARE`` instead of ``MIDDLEWARE``.

    Under ASGI each of Django's middleware with ``process_request`` or
    ``process_response`` costs a hop to a thread and back per request, and the
    webhook uses none of the sessions, authentication, messages, CSRF (it is
    exempt), sign-in lock-out or page headers: the full chain took 4.0 ms of a
    deferred batch's answer against 1.8 ms with only the security middleware
    (bench/README.md). Graph's requests come here; every other path keeps the
    full chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        # Django builds the chain from settings.MIDDLEWARE; this runs once, at
        # start-up, before any request.
        settings.MIDDLEWARE = settings.WEBHOOK_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Django's ``__call__`` with one long-lived thread for the request's
        thread-sensitive steps instead of a thread made for each request.

        Django runs each request in a ``ThreadSensitiveContext`` of its own: its
        first ``sync_to_async`` (the ``request_started`` signal's receivers)
        starts a thread and the context's end joins it, about 1 ms of CPU per
        request. What the webhook runs there is the signals' receivers and the
        response's ``close()`` (its view runs on the ingest threads, its
        middleware on the event loop), each a few microseconds, so its requests
        share one thread. Without ingest threads (``WEBHOOK_INGEST_THREADS`` 0)
        the view itself runs there: then each request keeps its own, as
        Django's."""
        if scope["type"] != "http" or ingestthreads.executor() is None:
            await super().__call__(scope, receive, send)
            return
        async with ThreadSensitiveContext(executor=_webhook_sync_thread):
            await self.handle(scope, receive, send)


# The webhook requests' thread-sensitive steps (WebhookHandler.__call__).
_webhook_sync_thread = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="webhook-sync"
)


webhook_asgi_app = WebhookHandler()
WEBHOOK_PATH = reverse("graph-callback")


async def http_app(scope: Any, receive: Any, send: Any) -> None:
    """Graph's webhook through its short chain, everything else through Django's."""
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    app = webhook_asgi_app if path == WEBHOOK_PATH else django_asgi_app
    await app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": routing.application,
    }
)

if inprocess.wanted():
    # The embedded default: Celery runs in this process (see callbot.runtime.inprocess).
    inprocess.start_worker()

# Everything above lives as long as the process: out of the collector's way.
freeze_startup()
