"""The board's pulse: KPIs and open alerts, pushed to this process's board sockets.

One asyncio task per web process, running while at least one of its sockets
watches the board: every ``BOARD_PULSE_SECONDS`` it reads the KPIs and the open
alerts (a handful of queries, whatever the number of sockets) and sends a
``board.pulse`` to its watchers when either changed. Reading the database, not
the channel layer, means alerts raised by any process (beat's worker, another
web process) reach every board within one pulse; ``alerts.delta`` messages on
the board's group bring them sooner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from channels.db import database_sync_to_async

from callbot.calls.alerts import open_alerts
from dashboard.kpis import board_kpis

logger = logging.getLogger(__name__)

PULSE_TYPE = "board.pulse"

# A watcher: sends one message to its socket; ``alerts`` says whether it may see them.
Send = Callable[[dict[str, Any]], Awaitable[None]]


def read_pulse() -> dict[str, Any]:
    return {"kpis": board_kpis(), "alerts": open_alerts()}


class BoardPulse:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watchers: dict[str, tuple[Send, bool]] = {}
        self.task: asyncio.Task[None] | None = None
        self.last: dict[str, Any] | None = None

    def watch(self, channel: str, send: Send, *, alerts: bool) -> None:
        self.watchers[channel] = (send, alerts)
        if self.task is None or self.task.done():
            self.last = None
            self.task = self.loop.create_task(self._run())

    def unwatch(self, channel: str) -> None:
        self.watchers.pop(channel, None)
        if not self.watchers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        interval = float(getattr(settings, "BOARD_PULSE_SECONDS", 5))
        # The first watcher's snapshot carries the figures already: a reading taken
        # now is the baseline, so an idle board hears nothing until one changes.
        try:
            self.last = await database_sync_to_async(
                read_pulse, thread_sensitive=False
            )()
        except Exception:
            logger.exception("reading the board pulse failed")
        while self.watchers:
            await asyncio.sleep(interval)
            try:
                # Not in the consumers' one database thread: a pulse on a big
                # board must not hold up their snapshots and actions.
                now = await database_sync_to_async(read_pulse, thread_sensitive=False)()
            except Exception:
                logger.exception("reading the board pulse failed")
                continue
            if now == self.last:
                continue
            self.last = now
            await self._send_all(now)

    async def _send_all(self, now: dict[str, Any]) -> None:
        for send, alerts in list(self.watchers.values()):
            message = {"type": PULSE_TYPE, "kpis": now["kpis"]}
            if alerts:
                message["alerts"] = {"open": now["alerts"]}
            try:
                await send(message)
            except Exception:
                logger.exception("sending the board pulse failed")


_pulse: BoardPulse | None = None


def board_pulse() -> BoardPulse:
    """This process's pulse for the running event loop (daphne runs one; tests
    run one per test, and a pulse never outlives its loop)."""
    global _pulse
    loop = asyncio.get_running_loop()
    if _pulse is None or _pulse.loop is not loop:
        _pulse = BoardPulse(loop)
    return _pulse
