"""What the latency benches share: starting the emulator, Callbot under daphne and,
with REDIS_URL set, a Celery worker, on this machine and in this run; and the
percentiles they print.

``callbot_stack`` migrates a fresh var directory (or the database ``own_database``
made), starts the processes on free ports, waits until they listen, and stops them
when the block ends. Used by ``action_latency.py`` and ``incoming_latency.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.emulator_to_callbot import DAPHNE, free_port, listening, wait_for

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """The median, the 99th percentile (nearest rank) and the largest value."""
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


@dataclass(frozen=True)
class Stack:
    """A running emulator and Callbot: where they listen and how they were set up."""

    env: dict[str, str]
    base: str  # Callbot, http://
    emulator_url: str  # https://
    ca: Path  # the emulator's CA, for TLS to it
    broker: bool  # a Celery worker on REDIS_URL (else tasks run in daphne)
    pids: dict[str, int]  # emulator, callbot (daphne) and, with a broker, worker


def _worker(queue: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "callbot",
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        "4",
        "--queues",
        queue,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "WARNING",
    ]


@contextmanager
def callbot_stack(
    prefix: str, database_url: str | None, *, supervisor: tuple[str, str] | None = None
) -> Iterator[Stack]:
    """Migrate, optionally create ``supervisor`` (username, password), start the
    emulator, Callbot and (with REDIS_URL) a worker; stop them afterwards.

    1. A temp var directory holds SQLite (unless ``database_url``) and the
       emulator's state; the worker gets a queue of its own.
    2. The processes start; once both ports listen Callbot's ``/healthz`` is
       asked for once, as a deployment's health check does at start (it starts
       the webhook inbox's applier where batches are deferred), and the block
       runs.
    3. On leaving, every process is terminated (killed after 20 s: a server can
       hold a websocket open).
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    state = workdir / "emulator"
    ports = {name: free_port() for name in ("emulator", "callbot")}
    emulator_url = f"https://127.0.0.1:{ports['emulator']}"
    base = f"http://127.0.0.1:{ports['callbot']}"
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CALLBOT_VAR_DIR": str(workdir),
        "EMULATOR_URL": emulator_url,
        "GRAPH_CA_BUNDLE": str(state / "ca.pem"),
        "BOT_PUBLIC_URL": base,
        "LOG_LEVEL": "WARNING",
        "CELERY_QUEUE": queue,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    broker = bool(env.get("REDIS_URL"))
    manage = [PYTHON, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    if supervisor is not None:
        user, password = supervisor
        subprocess.run(
            [*manage, "create_user", user, "--role", "supervisor", "--password-stdin"],
            cwd=ROOT,
            env=env,
            input=password.encode(),
            check=True,
            capture_output=True,
        )
    emulator = [PYTHON, "-m", "callbot.simulator", "--port", str(ports["emulator"])]
    emulator += ["--state-dir", str(state), "--log-level", "WARNING"]
    emulator += ["--bot-webhook", f"{base}/api/calling/callback"]
    commands = [
        emulator,
        [*DAPHNE, "-p", str(ports["callbot"]), "callbot.asgi:application"],
    ]
    if broker:
        commands.append(_worker(queue))
    children = [subprocess.Popen(c, cwd=ROOT, env=env) for c in commands]
    names = ["emulator", "callbot", "worker"][: len(children)]
    pids = dict(zip(names, [c.pid for c in children], strict=True))
    try:
        for port in ports.values():
            wait_for(f"port {port}", partial(listening, port))
        with urllib.request.urlopen(f"{base}/healthz", timeout=30):  # noqa: S310
            pass
        yield Stack(env, base, emulator_url, state / "ca.pem", broker, pids)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
