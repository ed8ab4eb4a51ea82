"""Fixtures of the fault tests: servers the test owns, the emulator, Callbot's
processes (``stack.py``).

One PostgreSQL cluster serves the session: a template database is migrated once and
each test gets a copy (``CREATE DATABASE ... TEMPLATE``, a fraction of a second).
The cluster is running again when a test ends, whatever the test did to it. Redis is
one per test. Nothing here touches ``DATABASE_URL``/``REDIS_URL`` of the test run.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.stack import TEMPLATE_DATABASE, Stack, prepare_template
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.servers import PostgresServer, RedisServer, missing_binaries

_numbers = itertools.count(1)
# Whether the test itself failed, for the stack's teardown to show the logs.
_failed = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def _binaries() -> None:
    missing = missing_binaries()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"fault tests need {missing}")
        pytest.skip(f"fault tests need {missing}")


@pytest.fixture(scope="session")
def postgres_cluster(
    _binaries: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        prepare_template(server, tmp_path_factory.mktemp("faults-template"))
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg(postgres_cluster: PostgresServer) -> Iterator[PostgresServer]:
    """The session's cluster, running; running again after the test."""
    postgres_cluster.start()
    yield postgres_cluster
    postgres_cluster.start()


@pytest.fixture
def database(pg: PostgresServer) -> Iterator[str]:
    """A fresh, migrated database of the test's own."""
    name = f"faults_{next(_numbers)}"
    pg.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE}")
    yield name
    pg.start()
    pg.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_server(_binaries: None) -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def fault_emulator(
    _binaries: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEmulator]:
    running = start_emulator(tmp_path_factory.mktemp("faults-emulator"))
    yield running
    running.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if getattr(report, "when", "") == "call":
        item.stash[_failed] = bool(getattr(report, "failed", False))
    return report


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    pg: PostgresServer,
    database: str,
    redis_server: RedisServer,
    fault_emulator: RunningEmulator,
    tmp_path: Path,
) -> Iterator[Stack]:
    """Callbot against the test's database and Redis; the test starts the
    processes it needs (``start_web``, ``start_worker``, ``start_beat``)."""
    fault_emulator.reset()
    built = Stack(
        pg=pg,
        redis=redis_server,
        emulator=fault_emulator,
        database=database,
        var_dir=tmp_path,
    )
    try:
        yield built
    finally:
        # What the test caused reaches the webhook before it stops.
        with contextlib.suppress(AssertionError):
            fault_emulator.wait_idle(timeout=5)
        built.stop()
        fault_emulator.control("DELETE", "/faults")
        fault_emulator.reset()
        if request.node.stash.get(_failed, False):
            print(built.logs())  # noqa: T201 (shown with the failure)


@pytest.fixture(params=["inline", "deferred"])
def webhook_apply(request: pytest.FixtureRequest, stack: Stack) -> str:
    """The stack's ``WEBHOOK_APPLY``, both ways: deferred is the default on this
    shape (PostgreSQL and Redis), inline is what anyone who sets it (or runs
    PostgreSQL without Redis) runs. Set before the test starts its processes."""
    mode: str = request.param
    stack.settings["WEBHOOK_APPLY"] = mode
    return mode
