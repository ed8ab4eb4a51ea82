"""When the webhook inbox's applier thread applies: beside the webhook's requests
of its process, not in their way (``WEBHOOK_INBOX_APPLIER = "thread"``).

Applying stored batches (``inbox.py``) is CPU-bound Python. On a thread of the
web process it holds the interpreter lock against the requests: each of a
request's hops between threads then waits up to the 5 ms switch interval, and a
group of one batch costs three to four times a group of twenty per batch
(7.4-7.6 against 1.8-2.3 ms of CPU on SQLite, bench/README.md). Applied as each batch was stored, a stream of
batches was applied one or two at a time, between and across its requests: the
webhook accepted hardly more than inline (bench/README.md).

So the applier thread takes its turn:

* a batch that arrived alone (more than ``STREAM_GAP_SECONDS`` after the
  previous request) is applied at once, once no request is in flight: what a
  supervisor's board waits on is not held back;
* in a stream of batches it waits until none has been in flight for
  ``QUIET_SECONDS``, or a whole group (``WEBHOOK_INBOX_GROUP``) is stored, or
  ``WEBHOOK_INBOX_YIELD_MS`` have passed: the answers go first and the stored
  batches are applied in larger groups between them, a group at least every
  ``WEBHOOK_INBOX_YIELD_MS``, so the inbox cannot be left to grow.

Order is not at stake: the applier applies rows in id order whenever it runs.
Counts this process's requests only: an applier process (PostgreSQL's default)
has none and never waits. Imports nothing of Callbot's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from django.conf import settings

# Requests closer together than this are a stream.
STREAM_GAP_SECONDS = 0.005
# In a stream, the pause between requests the applier takes as its turn.
QUIET_SECONDS = 0.002


class _Arrivals:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self._last_arrival = float("-inf")
        self._streaming = False  # the last request came close behind the one before
        self._quiet_since = float("-inf")  # when the last request in flight ended
        self._stored = 0  # rows stored since the applier last took its turn
        self._group = 1  # the applier's group: that many stored wake it

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        with self._cond:
            now = time.monotonic()
            self._in_flight += 1
            self._streaming = now - self._last_arrival < STREAM_GAP_SECONDS
            self._last_arrival = now
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                if not self._in_flight:
                    self._quiet_since = time.monotonic()
                    self._cond.notify_all()

    def stored(self) -> None:
        with self._cond:
            self._stored += 1
            if self._stored >= self._group:
                self._cond.notify_all()

    def wait_turn(self, group: int) -> None:
        deadline = time.monotonic() + settings.WEBHOOK_INBOX_YIELD_MS / 1000
        with self._cond:
            self._group = group
            while self._stored < group:
                now = time.monotonic()
                quiet_for = now - self._quiet_since
                if not self._in_flight and (
                    not self._streaming or quiet_for >= QUIET_SECONDS
                ):
                    break
                left = deadline - now
                if left <= 0:
                    break
                if not self._in_flight:
                    left = min(left, QUIET_SECONDS - quiet_for)
                self._cond.wait(left)
            self._stored = 0


_arrivals = _Arrivals()


def arriving() -> contextlib.AbstractContextManager[None]:
    """Around a webhook request: it is in flight."""
    return _arrivals.arriving()


def stored() -> None:
    """A batch was stored (``inbox.store``)."""
    _arrivals.stored()


def wait_turn(group: int) -> None:
    """Return when the applier thread may apply its next group of up to
    ``group`` rows (the module's docstring)."""
    _arrivals.wait_turn(group)
