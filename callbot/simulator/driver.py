"""Runs named scenarios inside the emulator: the ``Stage`` the scripts act through.

A run is an asyncio task on the emulator's loop. Starting one sets the emulator clock
to the run's ``speed`` (one clock for everything, so Microsoft's timers fast-forward
with the humans; the last started run wins). A run stops after ``duration`` virtual
seconds or when stopped; calls it started carry on and end as Microsoft would.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callbot.simulator.errors import GraphError
from callbot.simulator.model import identity_set
from callbot.simulator.scenarios import SCENARIOS, Condition, Person

if TYPE_CHECKING:
    from callbot.simulator.emulator import Emulator

logger = logging.getLogger(__name__)

# Per activity (each runs as a task in its own context): the virtual time its last
# pause was due to end. See ``Run.sleep``.
_due: contextvars.ContextVar[float] = contextvars.ContextVar("scenario_due")


def person_identity(person: Person, tenant_id: str) -> dict[str, Any]:
    if person.kind == "phone":
        return identity_set("phone", person.id, None, None)
    return identity_set("user", person.id, person.name, tenant_id)


@dataclass(eq=False)
class Run:
    """One scenario run; implements ``scenarios.Stage``."""

    id: int
    name: str
    seed: int
    duration: float
    speed: float
    emulator: Emulator
    rng: random.Random
    started: float
    status: str = "running"
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    # --- Stage ---------------------------------------------------------------------
    def log(self, message: str) -> None:
        self.emulator.events.add(
            "scenario", f"[{self.name}#{self.id} t={self.elapsed():.1f}s] {message}"
        )

    def elapsed(self) -> float:
        return self.emulator.clock.now() - self.started

    async def sleep(self, seconds: float) -> None:
        """Pause until ``seconds`` after the previous pause was due to end.

        Counting from the timetable rather than from now keeps a script on schedule
        when the loop is busy: at high speed a pause of a few real milliseconds costs
        about as much again in scheduling, and 1,000 such pauses would otherwise push
        the town hall's last joins past the run's duration. A script that fell behind
        catches up by not sleeping (still yielding to the loop).
        """
        clock = self.emulator.clock
        now = clock.now()
        due = _due.get(now) + seconds
        _due.set(due)
        await clock.sleep(due - now)

    def spawn(self, activity: Coroutine[Any, Any, None]) -> None:
        if self.status != "running":
            activity.close()
            return
        task = asyncio.get_running_loop().create_task(
            self._guard(activity), context=contextvars.Context()
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, activity: Coroutine[Any, Any, None]) -> None:
        try:
            await activity
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("scenario %s activity failed", self.name)

    def _identity(self, person: Person) -> dict[str, Any]:
        return person_identity(person, self.emulator.config.bot.tenant_id)

    def call_bot(self, caller: Person) -> str:
        call = self.emulator.calling.ring_bot(self._identity(caller))
        self.calls.append(call.id)
        return call.id

    async def wait_for(self, call_id: str, condition: Condition, within: float) -> bool:
        call = self.emulator.engine.any_call(call_id)
        if call is None:
            return condition == "ended"
        deadline = self.emulator.clock.now() + within
        while True:
            if condition == "ended" and call.ended:
                return True
            if condition == "established" and call.state == "established":
                return True
            if condition == "tones" and call.tone_subscribed and not call.ended:
                return True
            if call.ended:
                return False
            left = deadline - self.emulator.clock.now()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(
                    call.changed.wait(), self.emulator.clock.real(left)
                )
            except TimeoutError:
                return False

    def _live(self, call_id: str) -> Any:
        return self.emulator.engine.calls.get(call_id)

    def press(self, call_id: str, tones: list[str]) -> int:
        call = self._live(call_id)
        return self.emulator.media.press(call, tones) if call else 0

    def hang_up(self, call_id: str) -> None:
        call = self._live(call_id)
        if call is not None:
            self.emulator.calling.hang_up_remote(call, None)

    def escalate(self, call_id: str, newcomer: Person) -> None:
        call = self._live(call_id)
        if call is not None and call.state == "established" and call.kind == "p2p":
            self.emulator.calling.escalate(call, self._identity(newcomer))

    def create_meeting(self, subject: str, organizer: Person) -> str:
        return self.emulator.meetings.create(
            organizer.id, organizer.name, subject=subject
        ).id

    def invite_bot(self, meeting_id: str) -> str:
        meeting = self.emulator.meetings.by_id[meeting_id]
        call = self.emulator.calling.invite_bot(meeting)
        self.calls.append(call.id)
        return call.id

    def join(self, meeting_id: str, person: Person, muted: bool = False) -> str | None:
        try:
            conversation = self.emulator.calling.conversation_of(meeting_id=meeting_id)
            return self.emulator.calling.join(
                conversation, self._identity(person), muted
            )
        except GraphError as exc:
            self.log(f"{person.name} could not join: {exc.message}")
            return None

    def leave(self, meeting_id: str, participant_id: str) -> None:
        try:
            conversation = self.emulator.calling.conversation_of(meeting_id=meeting_id)
            self.emulator.calling.leave(conversation, participant_id)
        except GraphError:
            pass

    def set_muted(self, meeting_id: str, participant_id: str, muted: bool) -> None:
        self._set(meeting_id, participant_id, muted=muted)

    def set_sharing(self, meeting_id: str, participant_id: str, sharing: bool) -> None:
        self._set(meeting_id, participant_id, sharing=sharing)

    def _set(self, meeting_id: str, participant_id: str, **state: bool) -> None:
        try:
            conversation = self.emulator.calling.conversation_of(meeting_id=meeting_id)
            self.emulator.calling.set_state(conversation, participant_id, **state)
        except GraphError:
            pass

    # --- runner side -----------------------------------------------------------------
    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "seed": self.seed,
            "duration": self.duration,
            "speed": self.speed,
            "status": self.status,
            "elapsed": round(self.elapsed(), 2),
            "activities": len(self.tasks),
            "callsStarted": len(self.calls),
        }

    def stop(self, status: str = "stopped") -> None:
        if self.status == "running":
            self.status = status
        for task in list(self.tasks):
            task.cancel()


class ScenarioRunner:
    """Starts, lists and stops scenario runs."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.runs: dict[int, Run] = {}
        self._next = 1

    def start(self, name: str, seed: int, duration: float, speed: float) -> Run:
        """Start scenario ``name``. Raises ``ValueError`` for an unknown name or bad numbers."""
        if name not in SCENARIOS:
            raise ValueError(
                f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}"
            )
        if duration <= 0 or speed <= 0:
            raise ValueError("duration and speed must be positive")
        self.emulator.clock.set_speed(speed)
        run = Run(
            id=self._next,
            name=name,
            seed=seed,
            duration=duration,
            speed=speed,
            emulator=self.emulator,
            rng=random.Random(seed),
            started=self.emulator.clock.now(),
        )
        self._next += 1
        self.runs[run.id] = run
        run.log(f"started (seed {seed}, {duration:g} s at speed {speed:g})")
        run.spawn(self._main(run))
        return run

    async def _main(self, run: Run) -> None:
        try:
            await asyncio.wait_for(
                SCENARIOS[run.name](run, run.duration),
                self.emulator.clock.real(run.duration),
            )
        except TimeoutError:
            pass
        finally:
            if run.status == "running":
                run.log("finished")
                run.status = "finished"
                # Let the main task end before cancelling its siblings.
                asyncio.get_running_loop().call_soon(run.stop, "finished")

    def stop(self, run_id: int) -> Run | None:
        run = self.runs.get(run_id)
        if run is not None and run.status == "running":
            run.log("stopped")
            run.stop()
        return run

    def stop_all(self) -> None:
        for run in self.runs.values():
            run.stop()

    def summary(self) -> list[dict[str, Any]]:
        return [run.as_json() for run in self.runs.values()]
