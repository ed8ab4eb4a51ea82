"""Callbot as it answers while its Redis is down: pages load, and every socket is
accepted and then closed with 1011 (the channel layer fails after the accept).

daphne serves this in place of ``callbot.asgi:application`` for the reconnect
backoff test; the close comes at once rather than after redis-py's retries, so
a page that resets its backoff on every open shows it plainly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from callbot.asgi import application as callbot

CLOSE_INTERNAL_ERROR = 1011


async def application(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "websocket":
        await callbot(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_INTERNAL_ERROR})
