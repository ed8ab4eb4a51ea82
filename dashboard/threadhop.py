"""The live socket's trips to the sync thread, without growing the socket's context.

After each ``sync_to_async`` call asgiref (3.13) copies every context variable
back from the thread into the caller's context, and each of Django's ~40
``asgiref.local.Local`` variables comes back as a new storage object. Called from
a socket's long-lived task, that left the task's context, and the context copies
held by the receive tasks Channels keeps pending per socket, each with their own
set: about 15 KiB of every subscriber's memory (tracemalloc, bench/README.md).

``in_thread`` makes the same trip (``database_sync_to_async``: old database
connections closed on both sides) from a short-lived task running in a copy of
the caller's context, so what asgiref copies back is dropped with the task. The
consumer reads nothing the thread sets in its context: what a call returns is its
whole answer.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from channels.db import database_sync_to_async

T = TypeVar("T")


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` on the sync thread; the caller's context unchanged."""
    trip: Coroutine[Any, Any, T] = database_sync_to_async(func)(*args, **kwargs)
    task = asyncio.get_running_loop().create_task(
        trip, context=contextvars.copy_context()
    )
    return await task
