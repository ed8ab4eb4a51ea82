"""A group message that reaches a socket whose browser has just gone: the consumer
stops sending to it quietly and keeps dispatching until the server's disconnect
arrives; any other fault of a send still ends the consumer."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import pytest
from autobahn.exception import Disconnected
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from callbot.calls.alerts import ALERTS_DELTA_TYPE
from callbot.calls.live import LIVE_CALLS_GROUP
from tests.dashboard.sockets import connect, gather_snapshot

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


class Browser:
    """The server's send as daphne's is: once the page has gone, each send
    raises ``fault`` (daphne raises ``Disconnected``); every attempt is counted."""

    def __init__(self, socket: WebsocketCommunicator, fault: Exception) -> None:
        self.socket = socket
        self.fault = fault
        self.gone = False
        self.failed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone:
            await self.failed.put(message)
            raise self.fault
        await self.socket.output_queue.put(message)

    def start(self) -> None:
        # What ``ApplicationCommunicator.future`` does, with this send.
        socket = self.socket
        socket._future = contextvars.Context().run(
            asyncio.create_task,
            socket.application(socket.scope, socket.input_queue.get, self.send),
        )


async def open_board(user: Any, fault: Exception) -> Browser:
    socket = await connect(user)
    browser = Browser(socket, fault)
    browser.start()
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["type"] == "hello"
    await socket.send_json_to({"type": "subscribe", "board": True})
    await gather_snapshot(socket)
    return browser


async def group_send(message: dict[str, Any]) -> None:
    await get_channel_layer().group_send(LIVE_CALLS_GROUP, message)


async def test_a_socket_whose_browser_went_is_left_quietly(
    bob: Any, caplog: pytest.LogCaptureFixture
) -> None:
    browser = await open_board(
        bob, Disconnected("Attempt to send on a closed protocol")
    )
    browser.gone = True
    caplog.set_level(logging.DEBUG, logger="dashboard.consumers")

    await group_send({"type": ALERTS_DELTA_TYPE, "raised": [], "cleared": [1]})
    refused = await asyncio.wait_for(browser.failed.get(), 3)
    assert refused["type"] == "websocket.send"
    # The dispatch loop goes on: the next group message is handled (and not sent:
    # the consumer knows the socket has gone).
    await group_send({"type": "calls.notice", "call_id": 1, "text": "gone"})
    await group_send({"type": ALERTS_DELTA_TYPE, "raised": [], "cleared": [2]})
    await browser.socket.send_input({"type": "websocket.disconnect", "code": 1006})
    await browser.socket.wait(timeout=3)  # ends cleanly: raises if it crashed
    assert browser.failed.empty()  # one attempt, then no more
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(
        "closed before" in r.getMessage() and r.levelno == logging.DEBUG
        for r in caplog.records
    )


async def test_another_fault_of_a_send_still_surfaces(bob: Any) -> None:
    browser = await open_board(bob, ValueError("not a closed socket"))
    browser.gone = True

    await group_send({"type": ALERTS_DELTA_TYPE, "raised": [], "cleared": [1]})
    await asyncio.wait_for(browser.failed.get(), 3)
    with pytest.raises(ValueError, match="not a closed socket"):
        await browser.socket.wait(timeout=3)
