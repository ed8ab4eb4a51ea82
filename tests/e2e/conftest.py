"""End-to-end fixtures: the emulator on a real TLS socket, Callbot's webhook on
pytest-django's live server, and the settings that join them.

``callbot`` is function-scoped and transactional (the live server's thread reads
the same test database); the emulator is shared by the session and reset per test.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from callbot.celery import app as celery_app
from tests.support.callbot import point_callbot_at, release_callbot
from tests.support.emulator import RunningEmulator, start_emulator


@pytest.fixture(scope="session")
def emulator(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any, live_server: Any
) -> Iterator[RunningEmulator]:
    # Set up after the test database and the live server, so it stops first and
    # they stop in order: the emulator's keep-alive connections would hold the
    # live server's shutdown, and the live server's connections the database's.
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
    # Tasks run in-process, as on the embedded default, unless a test starts a
    # worker (tests/e2e/test_worker.py). The Celery app reads settings once, so
    # its own configuration is switched too.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    eager_before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield Callbot(url=live_server.url, webhook=webhook, emulator=emulator)
    celery_app.conf.task_always_eager = eager_before
    emulator.control("DELETE", "/faults")
    # Let what the test caused arrive while the database is still open: a
    # notification landing after teardown would fail in the live server.
    with contextlib.suppress(AssertionError):
        emulator.wait_idle(timeout=5)
    emulator.reset()
    release_callbot()


@pytest.fixture(scope="session")
def idle_connections_closed(emulator: RunningEmulator) -> Iterator[None]:
    """Before the emulator stops, close the HTTP sessions nobody closed.

    msal talks through a ``requests`` session (one per token provider, also inside
    Callbot's Graph client, whose ``close`` leaves it open) that keeps a TLS
    connection to the emulator; while one is open, the emulator's server waits on
    it for ten seconds at shutdown. The sessions outlive their providers (reference
    cycles, and pytest keeps some objects), so they are found and closed here.
    """
    yield
    gc.collect()
    for thing in gc.get_objects():
        # type(), not isinstance(): a weak proxy whose object is gone raises
        # ReferenceError on isinstance (it asks the proxy for __class__).
        if issubclass(type(thing), requests.Session):
            thing.close()


@pytest.fixture
def quiet_bot(
    callbot: Callbot, settings: Any, idle_connections_closed: None
) -> Iterator[Callbot]:
    """Callbot that decides nothing by itself: no call policy (a test database has
    none unless a test installs one), tasks eager so nothing waits in a broker. The
    test plays the bot through Graph, so what reaches the database is exactly what
    the test and the emulator caused.

    Afterwards it waits until the emulator has delivered what the test caused: a
    notification still in flight when the test database is torn down would reach
    the live server while database access is blocked again, and fail there.
    """
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield callbot
    with contextlib.suppress(AssertionError):
        callbot.emulator.wait_idle(timeout=5)
