"""What a live socket keeps while it stays open (bench/README.md, memory per live
call + subscriber): the context of its task unchanged by its trips to the sync
thread, no user or session in its scope, no trip to that thread for a
group message, its channel waiting in a ``ChannelQueue``, and its two sources
read by ``dispatch_each``."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from typing import Any

import pytest
from asgiref.local import Local
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

from callbot.calls.live import LIVE_CALLS_GROUP
from callbot.runtime.layers import ChannelQueue, InProcessChannelLayer
from dashboard import consumers
from dashboard.threadhop import in_thread
from tests.dashboard.sockets import gather_snapshot, open_socket

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]

marked = Local()


def mark() -> str:
    marked.value = "set in the thread"
    return "done"


async def test_a_trip_to_the_thread_leaves_the_callers_context_as_it_was() -> None:
    before = contextvars.copy_context()

    assert await in_thread(mark) == "done"

    after = contextvars.copy_context()
    assert len(after) == len(before)
    assert all(after[var] is before[var] for var in before)
    assert getattr(marked, "value", None) is None
    # What ``in_thread`` keeps out: a plain trip brings the thread's context back.
    await database_sync_to_async(mark)()
    assert marked.value == "set in the thread"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[consumers.LiveConsumer]:
    """Every consumer connected in the test."""
    seen: list[consumers.LiveConsumer] = []
    connect = consumers.LiveConsumer.connect

    async def connecting(self: consumers.LiveConsumer) -> None:
        seen.append(self)
        await connect(self)

    monkeypatch.setattr(consumers.LiveConsumer, "connect", connecting)
    return seen


async def test_a_socket_keeps_no_user_or_session_in_its_scope(
    bob: Any, opened: list[consumers.LiveConsumer]
) -> None:
    socket = await open_socket(bob)

    (consumer,) = opened
    assert "user" not in consumer.scope
    assert consumer.user.pk == bob.pk
    # The session's key, not the session (read afresh at each message).
    assert "session" not in consumer.scope
    assert consumer.scope["session_key"] == consumer._session_key()
    assert consumer._session_key()
    # Each message reads the user afresh; the one from connect is then let go.
    first = weakref.ref(consumer.user)
    await socket.send_json_to({"type": "ping", "request_id": "p1"})
    assert (await socket.receive_json_from())["type"] == "pong"
    gc.collect()
    assert first() is None
    assert consumer.user.pk == bob.pk
    await socket.disconnect()


async def test_a_group_message_reaches_the_socket_without_a_trip_to_the_thread(
    bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "board": True})
    await gather_snapshot(socket)
    trips: list[str] = []

    async def closing_old_connections() -> None:
        trips.append("close_old_connections")

    monkeypatch.setattr(
        "channels.consumer.aclose_old_connections", closing_old_connections
    )
    delta = {"type": "calls.delta", "calls": [], "removed": [], "version": 1}
    await get_channel_layer().group_send(LIVE_CALLS_GROUP, delta)

    got = await socket.receive_json_from()
    while got["type"] != "calls.delta":
        got = await socket.receive_json_from()
    assert got == delta
    assert trips == []
    await socket.disconnect()


async def test_an_open_socket_waits_on_a_channel_queue(bob: Any) -> None:
    layer = get_channel_layer()
    if not isinstance(layer, InProcessChannelLayer):
        pytest.skip("the embedded default's layer (REDIS_URL is set)")
    socket = await open_socket(bob)

    queues = list(layer.channels.values())
    assert queues
    assert all(type(queue) is ChannelQueue for queue in queues)
    await socket.disconnect()


async def test_dispatch_each_serves_both_sources_in_turn_and_cancels_on_exit() -> None:
    socket_messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    channel_messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    seen: list[str] = []
    left_waiting: list[bool] = []

    async def from_channel() -> dict[str, Any]:
        try:
            return await channel_messages.get()
        except asyncio.CancelledError:
            left_waiting.append(True)
            raise

    async def dispatch(message: dict[str, Any]) -> None:
        seen.append(message["type"])
        if message["type"] == "websocket.disconnect":
            raise StopConsumer

    await channel_messages.put({"type": "calls.delta"})
    await socket_messages.put({"type": "websocket.receive"})
    running = asyncio.ensure_future(
        consumers.dispatch_each([socket_messages.get, from_channel], dispatch)
    )
    await asyncio.sleep(0.01)
    await socket_messages.put({"type": "websocket.disconnect"})
    with pytest.raises(StopConsumer):
        await asyncio.wait_for(running, timeout=5)

    # Both ready at once: the socket's first, as Channels' await_many_dispatch.
    assert seen == ["websocket.receive", "calls.delta", "websocket.disconnect"]
    assert left_waiting == [True]  # the channel's receive, cancelled
