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

Imports nothing of Callbot's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from channels.layers import InMemoryChannelLayer

T = TypeVar("T")

# A hand-over gives up after this long: an owning loop that stopped (daphne shutting
# down) must not hang a worker thread, whose live push then fails and is logged.
HAND_OVER_TIMEOUT_SECONDS = 5.0


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
        receiving = InMemoryChannelLayer.receive(self, channel)
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
        await self._here_or_on_owner(InMemoryChannelLayer.send(self, channel, message))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self._here_or_on_owner(
            InMemoryChannelLayer.group_send(self, group, message)
        )

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
