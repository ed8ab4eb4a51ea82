"""Virtual time, so scenarios can fast-forward every timer at once.

All emulator timers (answer timeout, keepAlive expiry, media durations, scenario
pauses) are expressed in virtual seconds and go through one ``Clock``. With ``speed``
2.0 a 15 s answer timeout passes in 7.5 real seconds. Timestamps written into JSON stay
wall-clock: a bot compares them with its own clock.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable


class Clock:
    """A monotonic virtual clock whose rate can change while it runs."""

    def __init__(self, speed: float = 1.0) -> None:
        self._speed = speed
        self._real_origin = time.monotonic()
        self._virtual_origin = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Change the rate from now on; virtual time stays continuous."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._virtual_origin = self.now()
        self._real_origin = time.monotonic()
        self._speed = speed

    def now(self) -> float:
        """Virtual seconds since the clock started."""
        return (
            self._virtual_origin + (time.monotonic() - self._real_origin) * self._speed
        )

    def real(self, virtual_seconds: float) -> float:
        """How many real seconds ``virtual_seconds`` last at the current speed."""
        return max(0.0, virtual_seconds / self._speed)

    async def sleep(self, virtual_seconds: float) -> None:
        """Sleep for ``virtual_seconds`` at the current speed."""
        await asyncio.sleep(self.real(virtual_seconds))

    def call_later(
        self, virtual_seconds: float, callback: Callable[[], None]
    ) -> asyncio.TimerHandle:
        """Schedule ``callback`` on the running loop after ``virtual_seconds``.

        The callback runs in a fresh context, not the scheduling request's: otherwise
        it would inherit that request's deferred-notification list (see engine.py).
        """
        loop = asyncio.get_running_loop()
        return loop.call_later(
            self.real(virtual_seconds), callback, context=contextvars.Context()
        )
