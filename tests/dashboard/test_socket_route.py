"""The live socket's way in (``dashboard.routing``): only from an allowed origin,
only at ``ws/live/``."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from callbot.asgi import application
from tests.dashboard.sockets import ORIGIN, session_cookie

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


async def _socket(bob: Any, path: str, *headers: tuple[bytes, bytes]) -> Any:
    cookie = await database_sync_to_async(session_cookie)(bob)
    return WebsocketCommunicator(
        application, path, headers=[*headers, (b"cookie", cookie)]
    )


@pytest.mark.parametrize(
    "origin",
    [
        [(b"origin", b"http://evil.example")],
        [],  # none at all
    ],
    ids=["another-site", "none"],
)
async def test_a_socket_from_another_origin_is_refused(
    bob: Any, origin: list[tuple[bytes, bytes]]
) -> None:
    socket = await _socket(bob, "/ws/live/", *origin)
    connected, _ = await socket.connect()
    assert not connected
    await socket.disconnect()


async def test_a_socket_from_the_site_is_let_in(bob: Any) -> None:
    socket = await _socket(bob, "/ws/live/", ORIGIN)
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["type"] == "hello"
    await socket.disconnect()


async def test_a_socket_at_another_path_finds_no_route(bob: Any) -> None:
    socket = await _socket(bob, "/ws/elsewhere/", ORIGIN)
    with pytest.raises(ValueError, match="No route found"):
        await socket.connect()
