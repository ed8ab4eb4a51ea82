"""Timestamps at each hop of a notification's way to the browsers, for the benches.

Off unless ``CALLBOT_HOP_LOG`` names a file (read once, at import): then every
process (the web process, the inbox's applier, daphne's consumers) appends one
line per hop, ``<hop> <key> <unix time>``, with one ``os.write`` on a file opened
for appending, so lines of several processes never interleave. The key is the
call's Graph id where the hop knows it (the webhook and the applier read it from
the batch's text), else the call's row id, tied to the Graph id by an ``alias``
line at the publish. ``bench/hops.py`` reads the file and prints each segment's
percentiles (``bench/dashboard_latency.py --hops``, ``bench/incoming_latency.py
--hops``).

Off, each hop costs a module attribute read. Imports nothing of Callbot's.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from contextvars import ContextVar

_PATH = os.environ.get("CALLBOT_HOP_LOG", "")
ENABLED = bool(_PATH)
_fd = -1

# The Graph ids of the calls whose batches the applier is applying now: the
# publish that follows their commit is marked with them.
applying: ContextVar[tuple[str, ...]] = ContextVar("hops_applying", default=())

_CALL_ID = re.compile(rb"communications/calls/([0-9A-Za-z-]{8,64})")


def call_keys(body: bytes | memoryview) -> tuple[str, ...]:
    """The Graph call ids a batch's text names (only read with the log on)."""
    return tuple(sorted({m.decode() for m in _CALL_ID.findall(bytes(body))}))


def mark(hop: str, keys: Iterable[str], at: float | None = None) -> None:
    """Append ``hop`` for each key, at ``at`` (default now)."""
    global _fd
    if not ENABLED:
        return
    when = time.time() if at is None else at
    text = "".join(f"{hop} {key} {when:.6f}\n" for key in keys)
    if not text:
        return
    if _fd < 0:
        _fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, text.encode())
