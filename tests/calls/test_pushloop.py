"""Publishing from synchronous code reuses one event loop per thread (and with it
the channel layer's connections), and a request's thread uses its server's loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from callbot.calls import pushloop


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def loops_of_a_thread(times: int) -> list[asyncio.AbstractEventLoop]:
    seen: list[asyncio.AbstractEventLoop] = []
    thread = threading.Thread(
        target=lambda: seen.extend(pushloop.run(running_loop) for _ in range(times))
    )
    thread.start()
    thread.join()
    return seen


def test_a_thread_runs_every_publish_on_one_loop_of_its_own() -> None:
    first, second = loops_of_a_thread(3), loops_of_a_thread(1)

    assert len(set(first)) == 1
    assert first[0] is not second[0]
    assert not first[0].is_closed()  # kept for the thread's next publish


def test_a_request_thread_runs_it_on_the_server_loop() -> None:
    async def serve() -> bool:
        server = asyncio.get_running_loop()
        ran_on = await sync_to_async(pushloop.run, thread_sensitive=False)(running_loop)
        return ran_on is server

    assert asyncio.run(serve())


def test_a_coroutine_calling_it_is_refused_as_by_async_to_sync() -> None:
    async def inside() -> None:
        pushloop.run(running_loop)

    with pytest.raises(RuntimeError):
        asyncio.run(inside())


def test_publishes_from_one_thread_share_their_layer_connections() -> None:
    layer = get_channel_layer()
    assert layer is not None
    per_loop = getattr(layer, "_layers", None)
    before = set(per_loop or ())

    def publish_twice() -> None:
        for _ in range(2):
            pushloop.run(layer.group_send, "calls.test", {"type": "x.y"})

    thread = threading.Thread(target=publish_twice)
    thread.start()
    thread.join()
    # channels_redis keeps a connection pool per event loop; the in-memory
    # layer has none. Either way, one thread made one loop.
    if per_loop is not None:
        assert len(set(per_loop) - before) == 1
