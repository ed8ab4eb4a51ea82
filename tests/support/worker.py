"""A real Celery worker process for end-to-end tests, on the Redis broker.

The worker gets the test database and the emulator's URLs through the environment,
consumes a queue of its own (so messages of other runs cannot reach it) and can be
killed like any process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.support.emulator import RunningEmulator, wait_until


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when a machine dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def worker_environment(
    emulator: RunningEmulator,
    bot_url: str,
    database_name: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    database_url = env.get("DATABASE_URL", "")
    if database_url:
        parts = urlsplit(database_url)
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database_name}"))
    env.update(
        {
            "GRAPH_BASE_URL": f"{emulator.url}/v1.0",
            "GRAPH_AUTHORITY": emulator.authority,
            "GRAPH_CA_BUNDLE": str(emulator.ca_path),
            "GRAPH_NOTIFICATION_OPENID_URL": (
                f"{emulator.url}/v1/.well-known/OpenIdConfiguration"
            ),
            "BOT_PUBLIC_URL": bot_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **(extra or {}),
        }
    )
    return env


def start_worker(env: Mapping[str, str], queue: str) -> Worker:
    """Start ``celery worker`` (one process, solo pool) and wait until it is ready."""
    log = Path(tempfile.mkstemp(prefix="celery-worker-", suffix=".log")[1])
    handle: Any = log.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "callbot",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ],
        env=dict(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    worker = Worker(process=process, log=log)
    try:
        wait_until(
            lambda: "ready." in worker.output() or process.poll() is not None,
            timeout=30,
            interval=0.1,
        )
    finally:
        handle.close()
    if process.poll() is not None:
        raise RuntimeError(f"celery worker exited:\n{worker.output()[-3000:]}")
    return worker
