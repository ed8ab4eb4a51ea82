"""Helpers for tests of the live socket: sign in, connect, feed notifications."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from callbot.asgi import application
from callbot.calls.ingest import apply_notifications
from callbot.graph.notifications import parse_notification_batch
from tests.conftest import load_fixture

ORIGIN = (b"origin", b"http://127.0.0.1")


def ingest(name: str, message_id: str) -> None:
    apply_notifications(
        parse_notification_batch(json.dumps(load_fixture(name))), message_id=message_id
    )


def session_cookie(user: Any) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(user: Any | None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


async def open_socket(user: Any) -> WebsocketCommunicator:
    socket = await connect(user)
    connected, _ = await socket.connect()
    assert connected
    hello = await socket.receive_json_from()
    assert hello["type"] == "hello"
    return socket


async def snapshot(socket: WebsocketCommunicator, **subscribe: Any) -> dict[str, Any]:
    """Subscribe and gather the snapshot's parts into one message (lists joined)."""
    await socket.send_json_to({"type": "subscribe", **subscribe})
    return await gather_snapshot(socket)


async def gather_snapshot(socket: WebsocketCommunicator) -> dict[str, Any]:
    first = await socket.receive_json_from()
    assert first["type"].endswith(".snapshot"), first
    whole = dict(first)
    lists = [name for name, value in first.items() if isinstance(value, list)]
    part, number = first, 1
    while part["more"]:
        number += 1
        part = await socket.receive_json_from()
        assert (part["type"], part["snapshot"], part["part"]) == (
            first["type"],
            first["snapshot"],
            number,
        )
        for name in lists:
            whole[name] = whole[name] + part[name]
    # The last part says how many there were.
    assert part["parts"] == number
    whole["parts"] = number
    return whole
