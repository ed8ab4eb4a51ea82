"""The board's group, received once per web process and handed to its board sockets.

Every board socket used to join the board's group (``calls.live``) with its own
channel. A group send then queued one copy per socket, and on Redis
``channels_redis`` received each copy on its own: one process's copies wait in
one sorted set and are popped one at a time, each pop four round trips to
Redis (restore the backup, ``BZPOPMIN``, back it up, clean the backup) under
one lock. With 50 boards open the last socket had a delta 50 pops after the
first (6-8 ms at the median on this machine, 18 at p99; bench/README.md).

Here one channel per process and event loop joins the group and one task
receives from it; each message goes, in the order received, to every board
socket of the process (``BoardInbox``, read by the socket's own dispatch loop,
so a delta is never sent in the middle of a snapshot and each socket gets the
group's messages in order, as before). Receivers share the message, so they
only read it, as with the in-memory layer's group send. A receive that fails
(Redis gone) is handed to every socket as the failure its own receive would
have raised, closing it as before; the next board socket starts another relay.

The relay's channel is added to the group again every ``REJOIN_SECONDS``:
``channels_redis`` drops a group member after its ``group_expiry`` (a day),
and the relay lives as long as the process has a board open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from callbot.calls.live import LIVE_CALLS_GROUP

logger = logging.getLogger(__name__)

REJOIN_SECONDS = 3600.0


class BoardInbox:
    """One socket's board messages, in order, waiting for its dispatch loop
    (``consumers.dispatch_each``): a list and the loop's wake-up, no task (a
    socket's memory is counted: bench/README.md). A few messages wait at most,
    so a list's ``pop(0)`` costs nothing a deque's 64-slot block would save."""

    __slots__ = ("_items", "wake")

    def __init__(self) -> None:
        self._items: list[dict[str, Any] | BaseException] = []
        self.wake: asyncio.Future[None] | None = None

    def put(self, item: dict[str, Any] | BaseException) -> None:
        self._items.append(item)
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    def __bool__(self) -> bool:
        return bool(self._items)

    def take(self) -> dict[str, Any]:
        """The oldest message; raises the relay's failure in its place."""
        item = self._items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class BoardRelay:
    def __init__(self, loop: asyncio.AbstractEventLoop, layer: Any) -> None:
        self.loop = loop
        self.layer = layer
        self.inboxes: dict[str, BoardInbox] = {}
        self.task: asyncio.Task[None] | None = None
        self.joined: asyncio.Future[None] | None = None

    async def join(self, name: str, inbox: BoardInbox) -> None:
        """Hand the board's messages to ``inbox`` from now on: returns once the
        relay's channel is in the group, so a change committed after this
        returns reaches the inbox."""
        self.inboxes[name] = inbox
        joined = self.joined
        if self.task is None or self.task.done() or joined is None:
            joined = self.joined = self.loop.create_future()
            self.task = self.loop.create_task(self._run(joined))
        await asyncio.shield(joined)

    def leave(self, name: str) -> None:
        self.inboxes.pop(name, None)
        if not self.inboxes and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self, joined: asyncio.Future[None]) -> None:
        channel = await self.layer.new_channel()
        try:
            await self.layer.group_add(LIVE_CALLS_GROUP, channel)
            joined.set_result(None)
            # Beside the receive, never by cancelling it: a receive cancelled
            # while it pops a message leaves that message to a later receive's
            # restore, a delay the board's sockets need not have.
            rejoin = self.loop.create_task(self._rejoin(channel))
            try:
                while True:
                    message = await self.layer.receive(channel)
                    for inbox in list(self.inboxes.values()):
                        inbox.put(message)
            finally:
                rejoin.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("the board's relay stopped: %s", exc)
            if not joined.done():
                joined.set_exception(exc)
            for inbox in list(self.inboxes.values()):
                inbox.put(exc)
            self.inboxes.clear()
        finally:
            with contextlib.suppress(Exception):
                await self.layer.group_discard(LIVE_CALLS_GROUP, channel)

    async def _rejoin(self, channel: str) -> None:
        """Add the relay's channel to the group again every ``REJOIN_SECONDS``;
        a failure is the receive's to report (it meets the same Redis)."""
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await self.layer.group_add(LIVE_CALLS_GROUP, channel)
            except Exception as exc:
                logger.warning("the board's relay could not rejoin: %s", exc)


_relay: BoardRelay | None = None


def board_relay(layer: Any) -> BoardRelay:
    """This process's relay for the running event loop and layer (daphne runs
    one loop; tests run one per test, and a relay never outlives its loop)."""
    global _relay
    loop = asyncio.get_running_loop()
    if _relay is None or _relay.loop is not loop or _relay.layer is not layer:
        _relay = BoardRelay(loop, layer)
    return _relay
