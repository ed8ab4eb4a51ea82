"""ASGI entry point: HTTP through Django, websockets through the dashboard's routes.

Websockets pass the allowed-hosts origin check (no cross-site socket can ride a
session cookie) and the session/auth middleware (the consumer sees ``scope["user"]``).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
# Django must be set up before anything imports models (the websocket routes do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from callbot.celery import app as celery_app  # noqa: E402
from callbot.runtime import inprocess  # noqa: E402
from callbot.runtime.collector import freeze_startup  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

# Import every task module now, in one thread: finalized lazily, the first
# requests to send tasks from several threads at once would import the same
# modules together and could deadlock on the import locks.
celery_app.finalize()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

if inprocess.wanted():
    # The embedded default: Celery runs in this process (see callbot.runtime.inprocess).
    inprocess.start_worker()

# Everything above lives as long as the process: out of the collector's way.
freeze_startup()
