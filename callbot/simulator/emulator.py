"""The composition root: one ``Emulator`` holds every part and their shared state.

Routes reach it as ``request.app.state.emulator``. It owns no behaviour of its own
beyond wiring, reset and the figures of ``GET /_emulator/stats``.
"""

from __future__ import annotations

import copy
import random
from collections import Counter, deque
from typing import Any

from starlette.requests import Request

from callbot.simulator.calling import Calling
from callbot.simulator.clock import Clock
from callbot.simulator.config import EmulatorConfig
from callbot.simulator.delivery import Notifier
from callbot.simulator.driver import ScenarioRunner
from callbot.simulator.engine import Engine
from callbot.simulator.events import EventLog
from callbot.simulator.faults import FaultBoard, parse_faults
from callbot.simulator.identity import Identity
from callbot.simulator.media import MediaDesk
from callbot.simulator.meetings import MeetingBook
from callbot.simulator.participants import ParticipantDesk
from callbot.simulator.signin import SignIns


class Emulator:
    """Everything one emulator instance knows."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        # What ``reset`` returns to: timers, webhook and permissions may be changed
        # at run time through ``PATCH /_emulator/config``.
        self._initial = copy.deepcopy(config)
        self.rng = random.Random(config.seed)
        self.clock = Clock(config.speed)
        self.events = EventLog()
        self.faults = FaultBoard(self.rng)
        self.faults.set(parse_faults(config.faults))
        self.identity = Identity(config.bot, config.state_dir)
        self.notifier = Notifier(config, self.identity, self.faults, self.clock)
        self.engine = Engine(
            config, self.clock, self.notifier, self.faults, self.events, self.rng
        )
        self.meetings = MeetingBook(config.bot.tenant_id, self.rng)
        self.calling = Calling(self.engine, self.meetings)
        self.participants = ParticipantDesk(self.engine)
        self.media = MediaDesk(self.engine)
        self.scenarios = ScenarioRunner(self)
        self.graph_statuses: Counter[str] = Counter()
        # The last Graph requests (method, path, status, client-request-id), so a
        # test can tell whether an action reached Microsoft once or twice.
        self.graph_requests: deque[dict[str, Any]] = deque(maxlen=2000)
        self.tokens_issued = 0
        # Users signing in through the authorize page (signin.py).
        self.signins = SignIns()

    def reset(self) -> None:
        """Back to the start: forget calls, meetings, recordings, queued notifications,
        faults and counts, and restore the configuration the emulator started with."""
        for name in (
            "answer_timeout",
            "keepalive_timeout",
            "setup_delay",
            "callee_answer_delay",
            "media_seconds",
            "transfer_delay",
            "token_lifetime",
        ):
            setattr(self.config, name, getattr(self._initial, name))
        self.config.bot.webhook = self._initial.bot.webhook
        self.config.bot.permissions = self._initial.bot.permissions
        self.scenarios.stop_all()
        self.engine.reset()
        self.media.reset()
        self.meetings.reset()
        self.notifier.reset()
        self.faults.clear()
        self.faults.applied.clear()
        self.graph_statuses.clear()
        self.graph_requests.clear()
        self.events.clear()
        self.clock.set_speed(self.config.speed)

    def stats(self) -> dict[str, Any]:
        """What happened so far: notifications, Graph answers, faults, calls."""
        return {
            "notifications": {
                **self.notifier.stats.as_json(),
                "pending": self.notifier.pending_count(),
                "inFlight": self.notifier.in_flight(),
                "idle": not self.notifier.busy() and not self.engine.busy(),
            },
            "graph": {
                "statusCounts": dict(self.graph_statuses),
                "tokensIssued": self.tokens_issued,
            },
            "faults": {
                "active": self.faults.as_json(),
                "applied": dict(self.faults.applied),
            },
            "calls": {"live": len(self.engine.calls), "ended": len(self.engine.ended)},
            "scenarios": self.scenarios.summary(),
            "clock": {"speed": self.clock.speed, "now": round(self.clock.now(), 3)},
        }

    async def aclose(self) -> None:
        self.scenarios.stop_all()
        await self.notifier.close()


def emulator_of(request: Request) -> Emulator:
    """The emulator serving ``request``."""
    emulator: Emulator = request.app.state.emulator
    return emulator
