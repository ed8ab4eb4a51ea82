"""The threads the webhook applies batches on, in arrival order per call.

Under ASGI Django runs every synchronous view in a thread made for its request,
and a database connection belongs to its thread: each webhook request opened a
connection of its own (SQLite: a file and its pragmas; PostgreSQL: a connection
and a server process, ~35 open from one process under 4 clients), and on SQLite
concurrent requests took turns on its one write lock by sleeping in its busy
handler, which made the slowest batches wait up to seconds. With
``WEBHOOK_INGEST_THREADS`` set (2 on SQLite, 4 on PostgreSQL by default) the
webhook hands its work to long-lived threads instead: their connections are
opened once and kept, and batches queue for them in memory.

Batches naming a common call are applied one after the other in the order they
arrived, each once the one before it is done, after-commit work included
(``OrderedThreads``): a call's ``established`` is applied, and the IVR has
reacted to it, before its ``deleted``. Batches of other calls go beside them: a
new call's ringing is not kept waiting behind another call's after-commit work
(on the embedded default, with tasks in-process, that is the IVR's and the
call policy's Graph requests). The calls a batch names are read from its body
before it is verified (``notifications.peek_batch``); a body they cannot be
read from waits for every batch before it, and every later one waits for it. In
deferred mode (``inbox.py``) the batches are only stored, and the rows' ids
keep their order, so they are submitted with no calls and run side by side. On
SQLite the threads take turns on its write lock in the process
(``callbot.runtime.sqlite``) rather than in its busy handler.

After each batch a kept connection is checked as Django checks one after a
request: on PostgreSQL ``close_if_unusable_or_obsolete`` (CONN_MAX_AGE, and the
health check before its next use); on SQLite, which cannot tell a broken
connection from a usable one, it is closed after a batch that left a
transaction open or met a database error (reopening a file costs little).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections

T = TypeVar("T")

_lock = threading.Lock()
_executor: OrderedThreads | None = None


@dataclass(eq=False)
class _Job:
    # None: conflicts with every job (its calls are not known).
    keys: frozenset[str] | None
    call: Callable[[], Any]
    future: Future[Any] = field(default_factory=Future)


class OrderedThreads(Executor):
    """A thread pool that runs a job only once every earlier job sharing one of
    its keys has finished; jobs with no key in common run side by side.

    ``submit`` (an ``Executor``'s) runs a job that waits for every earlier one
    and that every later one waits for; ``for_calls(keys)`` is an ``Executor``
    whose jobs carry ``keys``, for ``sync_to_async``.
    """

    def __init__(self, threads: int, *, name: str = "webhook-ingest") -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._running: list[_Job] = []
        self._waiting: list[_Job] = []  # in arrival order
        # Over running and waiting jobs: their keys, and how many have none.
        self._keys: Counter[str] = Counter()
        self._unkeyed = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self.submit_ordered(None, fn, *args, **kwargs)

    def for_calls(self, keys: Collection[str] | None) -> Executor:
        return _Keyed(self, None if keys is None else frozenset(keys))

    def submit_ordered(
        self,
        keys: frozenset[str] | None,
        fn: Callable[..., T],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Future[T]:
        job = _Job(keys, functools.partial(fn, *args, **kwargs))
        with self._lock:
            if keys is None:
                blocked = bool(self._running or self._waiting)
            else:
                blocked = self._unkeyed > 0 or any(self._keys[k] for k in keys)
            if keys is None:
                self._unkeyed += 1
            else:
                self._keys.update(keys)
            if blocked:
                self._waiting.append(job)
            else:
                self._running.append(job)
        if not blocked:
            self._pool.submit(self._run, job)
        return job.future

    def waiting(self) -> int:
        """How many jobs wait for an earlier one."""
        with self._lock:
            return len(self._waiting)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def _run(self, job: _Job) -> None:
        try:
            if job.future.set_running_or_notify_cancel():
                try:
                    result = job.call()
                except BaseException as exc:
                    job.future.set_exception(exc)
                else:
                    job.future.set_result(result)
        finally:
            self._finished(job)

    def _finished(self, job: _Job) -> None:
        """Forget ``job`` and start the waiting jobs no earlier job blocks."""
        ready: list[_Job] = []
        with self._lock:
            self._running.remove(job)
            if job.keys is None:
                self._unkeyed -= 1
            else:
                self._keys.subtract(job.keys)
                for key in job.keys:
                    if self._keys[key] <= 0:
                        del self._keys[key]
            # What is ahead of each waiting job: the running ones and the
            # waiting ones that arrived before it.
            ahead: Counter[str] = Counter()
            for other in self._running:
                ahead.update(other.keys or ())
            unkeyed_ahead = sum(other.keys is None for other in self._running)
            jobs_ahead = len(self._running)
            waiting: list[_Job] = []
            for other in self._waiting:
                if other.keys is None:
                    blocked = jobs_ahead > 0
                else:
                    blocked = unkeyed_ahead > 0 or any(ahead[k] for k in other.keys)
                if blocked:
                    waiting.append(other)
                else:
                    ready.append(other)
                    self._running.append(other)
                jobs_ahead += 1
                if other.keys is None:
                    unkeyed_ahead += 1
                else:
                    ahead.update(other.keys)
            self._waiting = waiting
        for other in ready:
            self._pool.submit(self._run, other)


class _Keyed(Executor):
    """``OrderedThreads`` for jobs about ``keys``."""

    def __init__(self, threads: OrderedThreads, keys: frozenset[str] | None) -> None:
        self._threads = threads
        self._keys = keys

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        return self._threads.submit_ordered(self._keys, fn, *args, **kwargs)


def executor() -> OrderedThreads | None:
    """The ingest threads, started on first use; None when the setting is 0."""
    global _executor
    threads = int(settings.WEBHOOK_INGEST_THREADS or 0)
    if threads <= 0:
        return None
    with _lock:
        if _executor is None:
            _executor = OrderedThreads(threads)
        return _executor


def run(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` on an ingest thread, keeping its connections for the
    next batch unless they failed."""
    try:
        return function(*args)
    finally:
        keep_or_close_connections()


def keep_or_close_connections() -> None:
    """After a batch: keep this thread's connections for the next one unless
    they failed or are too old (Django's rules after a request)."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.vendor != "sqlite":
            # Pooled or persistent connections: Django's own rules (CONN_MAX_AGE,
            # the pool) decide, as after a request.
            conn.close_if_unusable_or_obsolete()
            continue
        if conn.in_atomic_block or conn.errors_occurred:
            # SQLite cannot tell a usable connection from a broken one
            # (``is_usable`` is always true); reopening a file costs little.
            with contextlib.suppress(DatabaseError):
                conn.close()
