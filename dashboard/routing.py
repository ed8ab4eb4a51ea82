"""The dashboard's websocket: one route, ``ws/live/``, behind the origin check.

Channels' ``OriginValidator`` and ``URLRouter`` each keep something for as long
as a socket stays open: the validator's frame its parsed ``Origin``, the router
its own copy of the scope with ``url_route``. With one route and one check,
``application`` does both without keeping either: the check runs in a call of
its own (channels' ``valid_origin`` against ``ALLOWED_HOSTS``, as
``AllowedHostsOriginValidator``; a refused socket is denied the same way), and
the route is a comparison. The socket's session and user are read by
``socketauth``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import AllowedHostsOriginValidator, WebsocketDenier

from dashboard.consumers import LiveConsumer
from dashboard.socketauth import SessionUserMiddleware

LIVE_PATH = "ws/live/"

live_socket = SessionUserMiddleware(LiveConsumer.as_asgi())


def _route(scope: dict[str, Any]) -> str:
    """The path below the root path, as ``URLRouter`` reads it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path:
        if not path.startswith(root_path):
            raise ValueError(f"No route found for path {path!r}.")
        path = path[len(root_path) :]
    return path.lstrip("/")


# Channels' check against ALLOWED_HOSTS (``valid_origin``), used without its __call__.
_validator = AllowedHostsOriginValidator(None)


def _origin_allowed(scope: dict[str, Any]) -> bool:
    """``AllowedHostsOriginValidator``'s verdict, in a call that keeps nothing."""
    parsed = None
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            parsed = urlparse(value.decode("latin1"))
    return bool(_validator.valid_origin(parsed))


async def application(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    """Every websocket: refused unless its origin is allowed, then routed."""
    if scope["type"] != "websocket":
        raise ValueError("The dashboard's websocket route takes websockets only.")
    if not _origin_allowed(scope):
        return await WebsocketDenier()(scope, receive, send)
    if _route(scope) != LIVE_PATH:
        raise ValueError(f"No route found for path {scope['path']!r}.")
    return await live_socket(scope, receive, send)
