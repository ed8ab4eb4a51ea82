"""ASGI entry point: HTTP through Django, websockets through the dashboard's routes.

Websockets pass the allowed-hosts origin check (no cross-site socket can ride a
session cookie) and read their session and user (``dashboard.routing``,
``dashboard.socketauth``: the consumer sees ``scope["user"]``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

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
from django.core import signals  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.core.handlers.exception import (  # noqa: E402
    convert_exception_to_response,
)
from django.http import HttpResponseBase  # noqa: E402
from django.urls import reverse, set_script_prefix  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from asgiref.sync import ThreadSensitiveContext  # noqa: E402

from callbot.calls import views  # noqa: E402


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
        # The same middleware around the view itself (``_post``): no URL
        # resolving, no view-middleware pass, nothing to route.
        chain: Any = convert_exception_to_response(views.callback)
        for path in reversed(settings.WEBHOOK_MIDDLEWARE):
            chain = convert_exception_to_response(import_string(path)(chain))
        self._post_chain = chain

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
        Django's. With ingest threads a POST (Graph's every request) takes
        ``_post`` instead, which needs no such thread at all."""
        if scope["type"] != "http" or ingestthreads.executor() is None:
            await super().__call__(scope, receive, send)
            return
        if scope["method"] == "POST":
            await self._post(scope, receive, send)
            return
        async with ThreadSensitiveContext(executor=_webhook_sync_thread):
            await self.handle(scope, receive, send)

    async def _post(self, scope: Any, receive: Any, send: Any) -> None:
        """A POST to the webhook: Django's ``handle`` without what the webhook
        does not use, so the request makes one thread hop, the view's to an
        ingest thread, where ``handle`` made three (the ``request_started``
        receivers, the view, the response's ``close()``) and ran the view
        behind URL resolving in a task beside one that listens for a
        disconnect (a view on another thread cannot be cancelled anyway).

        The same request and response objects, the same middleware
        (``WEBHOOK_MIDDLEWARE``) and the same view (``views.callback``: its
        token check, batch check, store and answers) as through ``handle``.
        ``request_started`` and ``request_finished`` are sent on the event
        loop's thread: Django's receivers there (``close_old_connections``,
        ``reset_queries``, ``close_caches``) find no connection to check, since
        the webhook's are the ingest threads', which check theirs after each
        batch (``ingestthreads.run``) as ``close_old_connections`` would."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, error = self.create_request(scope, body_file)
            # Django's create_request gives a request or an error response.
            response = cast(HttpResponseBase, error)
            if request is not None:
                response = await self._post_chain(request)
                response._resource_closers.append(request.close)
            await self.send_response(response, send)
            response.close()
        finally:
            body_file.close()


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
