"""The embedded default's channel layer: the in-process worker publishes from its own
threads into queues that daphne's event loop owns."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull

from callbot.runtime.layers import ChannelQueue, InProcessChannelLayer
from tests.support.emulator import wait_until

MESSAGE = {"type": "calls.delta", "call": {"id": 1, "version": 2}}


class ServerLoop:
    """An event loop on a thread of its own, as daphne's is. Debug mode makes asyncio
    raise when a foreign thread wakes one of its futures, where it would otherwise
    lose the wake-up until the loop next stirs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_debug(True)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def start(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.start(coro).result(timeout=5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def server_loop() -> Iterator[ServerLoop]:
    server = ServerLoop()
    yield server
    server.stop()


def test_group_send_from_a_plain_thread_reaches_a_receiver_on_the_server_loop(
    server_loop: ServerLoop,
) -> None:
    layer = InProcessChannelLayer()
    channel = server_loop.run(layer.new_channel())
    server_loop.run(layer.group_add("calls.live", channel))
    receiving = server_loop.start(layer.receive(channel))
    # Tasks start in order: once this one has run, the receiver is waiting.
    server_loop.run(asyncio.sleep(0))

    started = time.monotonic()
    # This test's thread runs no loop: async_to_sync makes one, as in a worker thread.
    async_to_sync(layer.group_send)("calls.live", MESSAGE)

    assert receiving.result(timeout=5) == MESSAGE
    assert time.monotonic() - started < 1


def test_a_receiver_on_a_plain_thread_gets_what_the_server_loop_sends(
    server_loop: ServerLoop,
) -> None:
    layer = InProcessChannelLayer()
    # A receiver on the server loop makes that loop the queues' owner.
    owner_channel = server_loop.run(layer.new_channel())
    server_loop.start(layer.receive(owner_channel))
    server_loop.run(asyncio.sleep(0))
    channel = server_loop.run(layer.new_channel())
    got: list[tuple[Any, float]] = []

    async def receive() -> Any:
        return await asyncio.wait_for(layer.receive(channel), timeout=3)

    def receive_in_thread() -> None:
        message = async_to_sync(receive)()
        got.append((message, time.monotonic()))

    thread = threading.Thread(target=receive_in_thread)
    thread.start()
    wait_until(lambda: channel in layer.channels)

    sent = time.monotonic()
    server_loop.run(layer.send(channel, MESSAGE))
    thread.join(timeout=5)

    assert [message for message, _ in got] == [MESSAGE]
    assert got[0][1] - sent < 1
    server_loop.run(layer.send(owner_channel, {"type": "done"}))


def test_without_a_running_owner_the_layer_works_like_the_in_memory_one() -> None:
    # Sent before anyone receives, then read on loops of their own (as the tests of
    # the live protocol do); the loop that received first has closed by the second.
    layer = InProcessChannelLayer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("calls.live", channel)
    async_to_sync(layer.group_send)("calls.live", MESSAGE)
    assert async_to_sync(layer.receive)(channel) == MESSAGE
    async_to_sync(layer.send)(channel, {"type": "second"})
    assert async_to_sync(layer.receive)(channel) == {"type": "second"}


def test_a_channel_queue_keeps_order_capacity_and_a_cancelled_receives_message() -> (
    None
):
    async def run() -> None:
        layer = InProcessChannelLayer(capacity=2)
        channel = await layer.new_channel()
        first = asyncio.ensure_future(layer.receive(channel))
        second = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
        assert type(layer.channels[channel]) is ChannelQueue
        # Woken by the send, then cancelled before it ran: the message goes to
        # the receive still waiting.
        await layer.send(channel, {"type": "one"})
        first.cancel()
        assert await second == {"type": "one"}
        assert channel not in layer.channels  # emptied: forgotten

        await layer.send(channel, {"type": "a"})
        await layer.send(channel, {"type": "b"})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "c"})
        assert await layer.receive(channel) == {"type": "a"}
        assert await layer.receive(channel) == {"type": "b"}
        assert channel not in layer.channels

    asyncio.run(run())


def test_a_group_send_reaches_every_channel_once_with_a_copy_made_at_the_send() -> None:
    async def run() -> None:
        layer = InProcessChannelLayer(capacity=1)
        channels = [await layer.new_channel() for _ in range(3)]
        for channel in channels:
            await layer.group_add("calls.live", channel)
        # The second channel is full: it misses the message, the others do not.
        await layer.send(channels[1], {"type": "earlier"})
        message = {"type": "calls.delta", "call": {"id": 1, "version": 2}}
        await layer.group_send("calls.live", message)
        # What the sender changes afterwards is not what was sent.
        message["call"]["version"] = 3
        # One copy, shared by the channels that got it (receivers only read it).
        first, third = (layer.channels[channels[i]]._queue[0][1] for i in (0, 2))
        assert first is third

        sent = {"type": "calls.delta", "call": {"id": 1, "version": 2}}
        assert await layer.receive(channels[0]) == sent
        assert await layer.receive(channels[1]) == {"type": "earlier"}
        assert await layer.receive(channels[2]) == sent
        assert layer.channels == {}
        with pytest.raises(TypeError):
            await layer.group_send("calls.live", {"__asgi_channel__": "x"})

    asyncio.run(run())


def test_a_group_send_leaves_out_an_expired_channel_and_keeps_expiry() -> None:
    async def run() -> None:
        layer = InProcessChannelLayer(expiry=60)
        stale, fresh = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("calls.live", stale)
        await layer.group_add("calls.live", fresh)
        await layer.send(stale, {"type": "unread"})
        # The unread message expires: its channel leaves the group.
        layer.channels[stale]._queue[0] = (time.time() - 1, {"type": "unread"})
        await layer.group_send("calls.live", MESSAGE)

        assert stale not in layer.groups["calls.live"]
        assert stale not in layer.channels
        assert await layer.receive(fresh) == MESSAGE
        await layer.group_send("calls.live", MESSAGE)
        expires, _ = layer.channels[fresh]._queue[0]
        assert time.time() + 59 < expires <= time.time() + 60

    asyncio.run(run())
