"""Running the channel layer's coroutines from synchronous code, cheaply.

``async_to_sync`` called where no event loop waits for it (a Celery worker's
thread, the in-process worker, a management command) starts a thread and a fresh
event loop for every call, and ``channels_redis`` keeps its Redis connections per
event loop: every publish paid for a thread, a loop and a new Redis connection
(a fifth of a worker's CPU). ``run`` instead keeps one event loop per thread for
the thread's life, so a thread's publishes reuse its loop and its connections.

Where an event loop does wait (a request served by daphne or uvicorn runs in a
thread of the server's loop), ``async_to_sync`` already runs the coroutine on that
loop without a new one, and ``run`` leaves it to it.

Imports nothing of Callbot's.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync

T = TypeVar("T")

_thread = threading.local()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop this thread was called from by ``sync_to_async``, if any."""
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's own event loop, made on first use and kept."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread.loop = loop
    return loop


def run(
    function: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
) -> T:
    """``async_to_sync(function)(*args, **kwargs)``, on the server's loop when this
    thread serves one, else on this thread's own loop (``thread_loop``)."""
    if _server_loop() is not None:
        return async_to_sync(function)(*args, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # Called from a coroutine: blocking here would deadlock; asgiref says so.
        return async_to_sync(function)(*args, **kwargs)
    return thread_loop().run_until_complete(function(*args, **kwargs))
