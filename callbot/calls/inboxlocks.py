"""The webhook inbox's locks: one applier at a time per database, and on SQLite
the process's writers (the webhook's stores, the applier) one at a time, stores
first (``inbox.py`` says what they guarantee)."""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from typing import IO

from django.db import DatabaseError, connection

from callbot.calls import inboxrouter

# pg_advisory_lock's key for "the webhook inbox's applier" (any fixed bigint;
# this one is b"cbinbox" read as an integer).
ADVISORY_KEY = int.from_bytes(b"cbinbox", "big")

_process_lock = threading.Lock()


@contextlib.contextmanager
def exclusive() -> Iterator[bool]:
    """True while this thread is the database's one applier; False if another is."""
    if not _process_lock.acquire(blocking=False):
        yield False
        return
    try:
        if connection.vendor == "postgresql":
            with _advisory_lock() as held:
                yield held
        else:
            with _file_lock() as held:
                yield held
    finally:
        _process_lock.release()


@contextlib.contextmanager
def _advisory_lock() -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            # A connection that died took the lock with it.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])


@contextlib.contextmanager
def _file_lock() -> Iterator[bool]:
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        yield True  # one process has the database; the process lock is enough
        return
    handle: IO[bytes] = open(name + ".inbox-lock", "ab")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the file (or the process dying) releases it
    finally:
        handle.close()


class _WriterGate:
    """On SQLite, the process's writers one at a time, stores first.

    SQLite has one writer; a store waiting in its busy handler sleeps in steps of
    up to 100 ms. Here a store waits on a condition for the applier's current
    transaction only, and the applier starts no new one while a store waits. On
    PostgreSQL, and with the inbox in a SQLite file of its own
    (``inboxrouter``), stores pass straight through."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._stores_waiting = 0

    @contextlib.contextmanager
    def storing(self) -> Iterator[None]:
        if connection.vendor != "sqlite" or inboxrouter.separate():
            # In a file of its own the store waits for no applier's transaction.
            yield
            return
        with self._cond:
            self._stores_waiting += 1
            while self._busy:
                self._cond.wait()
            self._stores_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            self._release()

    @contextlib.contextmanager
    def applying(self) -> Iterator[None]:
        if connection.vendor != "sqlite":
            yield
            return
        with self._cond:
            while self._busy or self._stores_waiting:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


gate = _WriterGate()
