"""End-to-end fixtures: the emulator on a real TLS socket, Callbot's webhook on
pytest-django's live server, and the settings that join them.

``callbot`` is function-scoped and transactional (the live server's thread reads
the same test database); the emulator is shared by the session and reset per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.callbot import point_callbot_at, release_callbot
from tests.support.emulator import RunningEmulator, start_emulator


@pytest.fixture(scope="session")
def emulator(
    tmp_path_factory: pytest.TempPathFactory, live_server: Any
) -> Iterator[RunningEmulator]:
    # Depends on live_server so it stops first: its open keep-alive connections
    # to the live server would otherwise hold that server's shutdown for seconds.
    running = start_emulator(tmp_path_factory.mktemp("e2e-emulator"))
    yield running
    running.stop()


@dataclass
class Callbot:
    """Callbot's live server and the emulator it talks to."""

    url: str
    webhook: str
    emulator: RunningEmulator


@pytest.fixture
def callbot(
    emulator: RunningEmulator, live_server: Any, settings: Any, transactional_db: Any
) -> Iterator[Callbot]:
    webhook = point_callbot_at(emulator, settings, live_server.url)
    yield Callbot(url=live_server.url, webhook=webhook, emulator=emulator)
    emulator.control("DELETE", "/faults")
    emulator.reset()
    release_callbot()
