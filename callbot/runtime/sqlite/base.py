"""Django's SQLite backend, with the process's threads taking turns on SQLite's
write lock in Python (``ENGINE: "callbot.runtime.sqlite"``, the embedded default).

SQLite has one writer at a time. A connection that finds the write lock taken
sleeps in SQLite's busy handler, in steps of 1, 2, 5, 10, 15, 20, 25 ms and more,
and tries again only when its current sleep is over: behind a 6 ms transaction it
waited 8 ms, behind a 20 ms one 33 ms, whatever was queued behind it longer. The
threads of one process (the webhook's ingest threads, request threads, the
in-process worker's) therefore queue on a lock of the process instead, one per
database file: taken before ``BEGIN IMMEDIATE`` and released when the
transaction commits, rolls back or its connection closes, and around a write
statement outside a transaction; the next writer goes on as soon as it is
released. A thread that cannot have it within the connection's ``timeout`` goes
on without it, to the busy handler as before. Other processes (a management
command, a worker) still take turns with this one in the busy handler. Reads
take no lock: WAL lets them run beside the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.sqlite3 import base

_guard = threading.Lock()
_locks: dict[str, threading.RLock] = {}

# Statements that do not write: no lock for them outside a transaction.
_READS = ("SELECT", "EXPLAIN", "PRAGMA")


def writer_lock(name: str) -> threading.RLock:
    """The process's lock for the SQLite database ``name``."""
    with _guard:
        return _locks.setdefault(name, threading.RLock())


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writing = False  # this connection holds the process's write lock

    def _lock(self) -> threading.RLock:
        # Looked up each time: tests rename the database after the wrapper is made.
        return writer_lock(str(self.settings_dict["NAME"]))

    def _wait(self) -> float:
        return float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))

    def _start_transaction_under_autocommit(self) -> None:
        if not self._writing:
            self._writing = self._lock().acquire(timeout=self._wait())
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]  # not in the stubs
        except BaseException:
            self._release()
            raise

    def _commit(self) -> None:
        super()._commit()  # type: ignore[misc]  # not in the stubs
        # A failed commit leaves the transaction open: the rollback releases it.
        self._release()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]  # not in the stubs
        finally:
            self._release()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]  # not in the stubs
        finally:
            self._release()

    def _release(self) -> None:
        if self._writing:
            self._writing = False
            self._lock().release()

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=_Cursor)
        cursor.writer = self._autocommit_write
        return cursor

    @contextmanager
    def _autocommit_write(self) -> Iterator[None]:
        """Hold the write lock for one statement outside a transaction."""
        lock = self._lock()
        taken = lock.acquire(timeout=self._wait())
        try:
            yield
        finally:
            if taken:
                lock.release()


class _Cursor(base.SQLiteCursorWrapper):
    writer: Any = None

    def _writes(self, query: str) -> bool:
        if self.connection.in_transaction or self.writer is None:
            return False
        return not query.lstrip()[:7].upper().startswith(_READS)

    def execute(self, query: str, params: Any = None) -> Any:
        if not self._writes(query):
            return super().execute(query, params)
        with self.writer():
            return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> Any:
        if not self._writes(query):
            return super().executemany(query, param_list)
        with self.writer():
            return super().executemany(query, param_list)
