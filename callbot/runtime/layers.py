"""The channel layer of the embedded default: in memory, safe to use from any thread.

``InMemoryChannelLayer`` keeps its messages in ``asyncio.Queue`` objects, which
belong to one event loop and are not thread-safe. On the embedded default that loop
is daphne's, where the dashboard's consumers wait in ``receive``; but the in-process
Celery worker (``callbot.runtime.inprocess``) publishes live deltas from its own
threads, each ``async_to_sync`` call on a loop of its own. Touching the queues from
there either raises (asyncio in debug mode) or leaves the consumer asleep until
daphne's loop happens to wake up.

So this layer remembers the loop that owns its queues, the one its ``receive`` runs
on, and an operation awaited on any other loop is handed to the owner
(``run_coroutine_threadsafe``) and awaited from where it was made. Without a running
owner (nobody has received yet, or that loop has ended) it behaves exactly like the
in-memory layer. With ``REDIS_URL`` set, ``channels_redis`` is used instead.

Each channel's messages wait in a ``ChannelQueue`` instead of an ``asyncio.Queue``:
every live socket's channel has a receive waiting on it for as long as the socket
is open, and an ``asyncio.Queue`` (three deques and an event, each deque a block
of 64 slots) was about 3 KiB of each subscriber's memory (bench/README.md).

A group send queues one copy of its message on every channel of the group, in
one pass on the owning loop: receivers share that copy and only read it.

Imports nothing of Callbot's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from copy import deepcopy
from typing import Any, TypeVar

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

T = TypeVar("T")

# A hand-over gives up after this long: an owning loop that stopped (daphne shutting
# down) must not hang a worker thread, whose live push then fails and is logged.
HAND_OVER_TIMEOUT_SECONDS = 5.0


class ChannelQueue:
    """What ``InMemoryChannelLayer`` uses of an ``asyncio.Queue`` (``put_nowait``,
    ``get``, ``get_nowait``, ``empty``, and ``_queue[0]`` when not empty), in
    about 200 bytes: two lists, the second holding the futures of receives
    waiting. Messages are few per channel (its capacity, 100 by default), so a
    list's ``pop(0)`` costs nothing a deque would save. One loop's, as the layer
    is."""

    __slots__ = ("_getters", "_queue", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._queue: list[Any] = []
        self._getters: list[asyncio.Future[None]] = []

    def qsize(self) -> int:
        return len(self._queue)

    def empty(self) -> bool:
        return not self._queue

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._queue)

    def put_nowait(self, item: Any) -> None:
        if self.full():
            raise asyncio.QueueFull
        self._queue.append(item)
        self._wake_one()

    def get_nowait(self) -> Any:
        if not self._queue:
            raise asyncio.QueueEmpty
        return self._queue.pop(0)

    async def get(self) -> Any:
        while not self._queue:
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if waiter in self._getters:
                    self._getters.remove(waiter)
                # Woken, then cancelled: the message goes to the next receive.
                if self._queue:
                    self._wake_one()
                raise
        return self.get_nowait()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return


class InProcessChannelLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """``InMemoryChannelLayer`` whose queues are only ever used on their own loop."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner: asyncio.AbstractEventLoop | None = None

    def _owner_elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """The owning loop when it runs and is not the caller's, else None."""
        owner = self._owner
        if owner is None or not owner.is_running():
            return None
        if owner is asyncio.get_running_loop():
            return None
        return owner

    async def _here_or_on_owner(self, operation: Coroutine[Any, Any, T]) -> T:
        owner = self._owner_elsewhere()
        if owner is None:
            return await operation
        async with asyncio.timeout(HAND_OVER_TIMEOUT_SECONDS):
            return await _handed_over(owner, operation)

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for a message. The first loop to receive owns the queues for as long
        as it runs; a receive awaited on another loop waits on the owner's queue."""
        receiving = self._receive_here(channel)
        owner = self._owner_elsewhere()
        if owner is not None:
            # A receive may wait indefinitely: no hand-over timeout.
            received: dict[str, Any] = await _handed_over(owner, receiving)
            return received
        if self._owner is None or not self._owner.is_running():
            self._owner = asyncio.get_running_loop()
        message: dict[str, Any] = await receiving
        return message

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._here_or_on_owner(self._send_here(channel, message))

    def _queue(self, channel: str) -> ChannelQueue:
        queue: ChannelQueue | None = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = ChannelQueue(self.get_capacity(channel))
        return queue

    async def _send_here(self, channel: str, message: dict[str, Any]) -> None:
        """``InMemoryChannelLayer.send`` with a ``ChannelQueue``."""
        if not isinstance(message, dict) or "__asgi_channel__" in message:
            raise TypeError("a channel message is a dict without __asgi_channel__")
        self.require_valid_channel_name(channel)
        try:
            self._queue(channel).put_nowait(
                (time.time() + self.expiry, deepcopy(message))
            )
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def _receive_here(self, channel: str) -> dict[str, Any]:
        """``InMemoryChannelLayer.receive`` with a ``ChannelQueue``."""
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        finally:
            if queue.empty() and self.channels.get(channel) is queue:
                self.channels.pop(channel, None)
        return message  # type: ignore[no-any-return]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._here_or_on_owner(self._group_send_here(group, message))

    async def _group_send_here(self, group: str, message: dict[str, Any]) -> None:
        """``InMemoryChannelLayer.group_send`` in one pass: the message is copied
        once and that copy queued on every channel of the group, where the
        in-memory layer made a task per channel, each with a deep copy of its
        own, and woke no receiver before all of them had run (bench/README.md:
        the first of 50 waiting receivers had a board delta 0.8-1.0 ms after
        the send, now 0.15). Receivers share the copy, so they only read it: a
        consumer that changed a message would change it for every other
        receiver (``dashboard/awareness.py`` sends a filtered copy where it
        drops a key). A full channel misses the message, as before; the others
        still get it."""
        if not isinstance(message, dict) or "__asgi_channel__" in message:
            raise TypeError("a channel message is a dict without __asgi_channel__")
        self.require_valid_group_name(group)
        self._clean_expired()
        channels = self.groups.get(group)
        if not channels:
            return
        queued = (time.time() + self.expiry, deepcopy(message))
        for channel in list(channels):
            with contextlib.suppress(asyncio.QueueFull):
                self._queue(channel).put_nowait(queued)

    async def group_add(self, group: str, channel: str) -> None:
        await self._here_or_on_owner(
            InMemoryChannelLayer.group_add(self, group, channel)
        )

    async def group_discard(self, group: str, channel: str) -> None:
        await self._here_or_on_owner(
            InMemoryChannelLayer.group_discard(self, group, channel)
        )

    async def flush(self) -> None:
        await self._here_or_on_owner(InMemoryChannelLayer.flush(self))


def _handed_over(
    owner: asyncio.AbstractEventLoop, operation: Coroutine[Any, Any, T]
) -> asyncio.Future[T]:
    """``operation`` running on ``owner``, awaitable from the caller's loop.
    Cancelling the wait cancels the operation on the owning loop too."""
    try:
        future = asyncio.run_coroutine_threadsafe(operation, owner)
    except RuntimeError:  # the owner closed since it was seen running
        operation.close()
        raise
    return asyncio.wrap_future(future)
