"""The baseline for bench/board_scale.py's memory figure: a bare ASGI websocket
endpoint under the same daphne, which accepts a socket, answers each message with a
small JSON frame and holds the socket open (no session, no channel layer)."""

from __future__ import annotations

from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    if scope["type"] != "websocket":
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": '{"type": "pong"}'})
        elif message["type"] == "websocket.disconnect":
            return
