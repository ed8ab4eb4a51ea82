"""Where a web process applies its stored webhook batches (``inbox.py``).

``WEBHOOK_INBOX_APPLIER = "process"`` (the default with PostgreSQL and Redis): a
child process, ``manage.py apply_inbox --follow``, woken by a byte on its stdin,
started by the process's first ``/healthz`` (``start``) or else its first batch.
Applying a batch is CPU-bound Python; on a thread of the web process it held the
interpreter lock against the requests, whose every hop between threads (Django's
middleware runs in threads under ASGI) then waited up to the 5 ms switch
interval: the answer took 17 ms instead of 4. The child exits when the web
process does (its stdin closes) and is started again by the next wake-up if it
died. ``"thread"``: a daemon thread of the web process (SQLite's default: a
second process's write transactions would make the request's store sleep in
SQLite's busy handler).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO

from django.conf import settings
from django.db import connection, connections

from callbot.calls import inbox, inboxrouter, ingestthreads
from callbot.calls.quarantine import is_outage

logger = logging.getLogger(__name__)


class _Applier:
    """Drains the inbox when a store wakes it, and every
    ``WEBHOOK_INBOX_SWEEP_SECONDS`` anyway (rows a dead process left, rows an
    outage left): on a thread of this process or in a child process."""

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._pipe = -1
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start the thread or child process unless it runs: as a kick, but no
        wake-up for one already running."""
        if settings.WEBHOOK_INBOX_APPLIER == "process":
            with self._start_lock:
                if self._child is not None and self._child.poll() is None:
                    return
        elif self._thread is not None:
            return
        self.kick()

    def kick(self) -> None:
        if settings.WEBHOOK_INBOX_APPLIER == "process":
            self._kick_child()
        else:
            self._kick_thread()

    def _kick_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="webhook-inbox", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=max(1, settings.WEBHOOK_INBOX_SWEEP_SECONDS))
            self._wake.clear()
            if self._stopping:
                break
            ingestthreads.run(_drain_yielding, self._stored_since)
        connections.close_all()

    def _stored_since(self) -> bool:
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    def stop(self) -> None:
        """End the thread after its current drain, closing its connections (a
        test database cannot be dropped while one is open), and the child
        process (its pipe closed); the next kick starts another."""
        with self._start_lock:
            child, self._child = self._child, None
            if child is not None:
                os.close(self._pipe)
                self._pipe = -1
                child.wait(timeout=30)
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout=30)
        self._thread = None
        self._stopping = False

    def _kick_child(self) -> None:
        with self._start_lock:
            if self._child is None or self._child.poll() is not None:
                if self._pipe >= 0:
                    os.close(self._pipe)
                self._child, self._pipe = _start_child()
            try:
                os.write(self._pipe, b"w")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups the child has not read yet
            except BrokenPipeError:
                pass  # it died; the next kick starts another


def _start_child() -> tuple[subprocess.Popen[bytes], int]:
    """The applier process and the write end of its wake-up pipe (its stdin)."""
    read, write = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "django", "apply_inbox", "--follow"],
            stdin=read,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": _settings_module(),
                # The database this process stores into, as it runs (a test
                # run's is not the one its settings name).
                DATABASE_NAME_ENV: str(connection.settings_dict["NAME"]),
                **_inbox_name(),
            },
        )
    finally:
        os.close(read)
    os.set_blocking(write, False)
    logger.info("webhook inbox applier started (pid %d)", child.pid)
    return child, write


DATABASE_NAME_ENV = "CALLBOT_INBOX_DATABASE_NAME"
# The inbox's own SQLite file, where it has one (``inboxrouter``).
INBOX_NAME_ENV = "CALLBOT_INBOX_FILE_NAME"


def _inbox_name() -> dict[str, str]:
    if not inboxrouter.separate():
        return {}
    return {INBOX_NAME_ENV: str(connections[inboxrouter.ALIAS].settings_dict["NAME"])}


def _settings_module() -> str:
    return os.environ.get("DJANGO_SETTINGS_MODULE") or "callbot.settings"


def follow(wakeups: IO[bytes]) -> None:
    """The child's loop: drain when woken (a byte on ``wakeups``), or every
    ``WEBHOOK_INBOX_SWEEP_SECONDS``; return when ``wakeups`` closes (the web
    process is gone)."""
    fd = wakeups.fileno()

    def stored_since() -> bool:
        # Wake-ups that came while draining: read them (their rows are read
        # next, under the lock still held) so they wake no drain after this one.
        # The pipe closed reads as none; the loop's next select sees it.
        ready, _, _ = select.select([fd], [], [], 0)
        return bool(ready) and bool(os.read(fd, 4096))

    while True:
        ready, _, _ = select.select(
            [fd], [], [], max(1, settings.WEBHOOK_INBOX_SWEEP_SECONDS)
        )
        if ready and not os.read(fd, 4096):
            return
        _drain_unchecked(stored_since)


def _drain_unchecked(stored_since: Callable[[], bool]) -> None:
    """One drain of the applier process, on a connection kept without the
    ``SELECT 1`` Django's health check (``CONN_HEALTH_CHECKS``) sends before its
    first statement after each drain: a round trip before every ring's lock.
    A connection that died meanwhile (a PostgreSQL restart) fails the drain's
    first statement, and the drain is tried once more on a new connection, so a
    restart costs no waiting for the sweep."""
    if not _drain_logged(stored_since, retry=True):
        connection.close_if_unusable_or_obsolete()
        _drain_logged(stored_since)
    ingestthreads.keep_or_close_connections()
    if connection.connection is not None and not connection.errors_occurred:
        # Its last statements just succeeded: as good as the check's SELECT 1.
        connection.health_check_done = True  # type: ignore[attr-defined]


def _drain_yielding(stored_since: Callable[[], bool]) -> None:
    """The applier thread's drain: each group taking its turn beside the
    process's webhook requests (``arrivals``)."""
    _drain_logged(stored_since, yielding=True)


def _drain_logged(
    stored_since: Callable[[], bool] | None = None,
    *,
    retry: bool = False,
    yielding: bool = False,
) -> bool:
    """Drain, logging a failure; False for an outage to try again (``retry``)."""
    try:
        if yielding:
            inbox.drain(stored_since, yielding=True)
        else:
            inbox.drain(stored_since)
    except Exception as exc:
        if is_outage(exc):
            if retry:
                return False
            logger.warning("inbox not drained, the database is unavailable: %s", exc)
        else:
            logger.exception("inbox drain failed")
    return True


_applier = _Applier()


def kick() -> None:
    """Wake this process's applier (started on first use). Never raises: the
    batch is stored, and a row nobody was woken for is applied by the sweep."""
    try:
        _applier.kick()
    except Exception:
        logger.exception("could not wake the webhook inbox's applier")


def start() -> None:
    """Start this process's applier now, if the webhook defers and none runs
    (``/healthz``: a deployment's health check asks for it as the process
    starts, before Graph's first batch). Started by the first batch instead,
    the child process spent about 2 s importing Django before it applied that
    batch: the first call rang that much later. Never raises."""
    if not inbox.deferred():
        return
    try:
        _applier.start()
    except Exception:
        logger.exception("could not start the webhook inbox's applier")


def stop_applier() -> None:
    """End this process's applier thread or process, if one runs
    (``_Applier.stop``)."""
    _applier.stop()
