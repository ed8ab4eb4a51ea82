"""The scenario driver's pauses keep a script on its timetable under a busy loop."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace
from typing import Any, cast

from callbot.simulator.clock import Clock
from callbot.simulator.driver import Run


def run_on(clock: Clock) -> Run:
    emulator = cast(Any, SimpleNamespace(clock=clock))
    return Run(
        id=1,
        name="townhall",
        seed=0,
        duration=60,
        speed=clock.speed,
        emulator=emulator,
        rng=random.Random(0),
        started=clock.now(),
    )


def test_many_short_pauses_add_up_to_their_sum_not_to_their_overhead() -> None:
    # At speed 2,000 a 0.05 s pause is 25 µs of real time, less than one trip
    # round the event loop; counted from "now", 400 of them would take several
    # times their 20 virtual seconds.
    clock = Clock(speed=2000)
    run = run_on(clock)

    async def script() -> float:
        for _ in range(400):
            await run.sleep(0.05)
        return run.elapsed()

    elapsed = asyncio.run(script())

    assert 20 <= elapsed < 26


def test_a_script_that_fell_behind_catches_up_without_sleeping() -> None:
    clock = Clock(speed=1)
    run = run_on(clock)

    async def script() -> float:
        await run.sleep(0.05)
        # Busy for 0.2 s: the next three 0.05 s pauses are already due.
        await asyncio.sleep(0.2)
        before = clock.now()
        for _ in range(3):
            await run.sleep(0.05)
        return clock.now() - before

    assert asyncio.run(script()) < 0.03
