"""The threads the webhook applies batches on.

Under ASGI Django runs every synchronous view in a thread made for its request,
and a database connection belongs to its thread: each webhook request opened a
connection of its own (SQLite: a file and its pragmas; PostgreSQL: a connection
and a server process, ~35 open from one process under 4 clients), and on SQLite
concurrent requests took turns on its one write lock by sleeping in its busy
handler, which made the slowest batches wait up to seconds. With
``WEBHOOK_INGEST_THREADS`` set (1 on SQLite, 4 on PostgreSQL by default) the
webhook hands its work to long-lived threads instead: their connections are
opened once and kept, and batches queue for them in memory, in arrival order.

After each batch a kept connection is checked as Django checks one after a
request: on PostgreSQL ``close_if_unusable_or_obsolete`` (CONN_MAX_AGE, and the
health check before its next use); on SQLite, which cannot tell a broken
connection from a usable one, it is closed after a batch that left a
transaction open or met a database error (reopening a file costs little).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor | None:
    """The ingest threads, started on first use; None when the setting is 0."""
    global _executor
    threads = int(settings.WEBHOOK_INGEST_THREADS or 0)
    if threads <= 0:
        return None
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=threads, thread_name_prefix="webhook-ingest"
            )
        return _executor


def run(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` on an ingest thread, keeping its connections for the
    next batch unless they failed."""
    try:
        return function(*args)
    finally:
        _keep_or_close_connections()


def _keep_or_close_connections() -> None:
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
