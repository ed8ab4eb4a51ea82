"""A short, numbered log of what the emulator did, for people and for ``simulate``.

Every call lifecycle step, human action and scenario step is appended here (and to
Python logging). ``GET /_emulator/events?after=N`` returns what came after sequence N,
so a poller prints each line once.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("callbot.simulator")


class EventLog:
    """A bounded ring of events with increasing sequence numbers."""

    def __init__(self, size: int = 5000) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=size)
        self._sequence = 0

    def add(self, kind: str, message: str, **ids: str) -> None:
        """Record one event; ``ids`` (say ``callId``) go into the entry as they are."""
        self._sequence += 1
        self._events.append(
            {
                "seq": self._sequence,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "kind": kind,
                "message": message,
                **ids,
            }
        )
        logger.info("%s: %s", kind, message, extra={"emulator_ids": ids})

    def after(self, sequence: int, limit: int = 500) -> list[dict[str, Any]]:
        """Events with ``seq`` greater than ``sequence``, oldest first."""
        return [event for event in self._events if event["seq"] > sequence][:limit]

    @property
    def last(self) -> int:
        return self._sequence

    def clear(self) -> None:
        self._events.clear()
