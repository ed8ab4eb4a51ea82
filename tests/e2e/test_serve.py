"""``manage.py serve`` on the embedded default, as ``make run`` starts it: the worker
and beat run inside daphne's process, and a SIGTERM stops every child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.emulator import free_port, wait_until

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]

# A beat entry every second that sends queued actions again, and one queued action
# (create an online meeting): if beat's sends reach the in-process worker, the
# action reaches the emulator and completes.
SETUP = """
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from callbot.calls.models import Action
every, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
PeriodicTask.objects.update_or_create(
    name="test-requeue", defaults={"task": "callbot.calls.requeue_stale_actions",
    "interval": every})
Action.objects.create(kind="create_online_meeting", parameters={"subject": "Beat check"})
"""
STATUS = (
    "from callbot.calls.models import Action; "
    "print(Action.objects.get(kind='create_online_meeting').status)"
)
# Beat reads its schedule from the database (django-celery-beat), as admins edit it.
RUNS = (
    "from django_celery_beat.models import PeriodicTask; "
    "print(PeriodicTask.objects.get(name='test-requeue').total_run_count)"
)


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def children_of(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [int(p) for p in out.split()]


def test_serve_runs_beat_and_worker_in_process_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER")
    }
    port, emulator_port = free_port(), free_port()
    env.update(
        CALLBOT_VAR_DIR=str(tmp_path),
        EMULATOR_URL=f"https://127.0.0.1:{emulator_port}",
        ACTION_REQUEUE_AFTER_SECONDS="0",
        LOG_LEVEL="WARNING",
    )
    manage(env, "migrate", "-v0")
    # A fresh directory: migrate makes the main file and the webhook inbox's.
    assert {"callbot.sqlite3", "callbot-inbox.sqlite3"} <= {
        p.name for p in tmp_path.iterdir()
    }
    manage(env, "shell", "-v0", "-c", SETUP)
    serve = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--scenario",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: manage(env, "shell", "-v0", "-c", STATUS) == "completed",
            timeout=60,
            interval=1,
        )
        assert int(manage(env, "shell", "-v0", "-c", RUNS)) > 0
        children = children_of(serve.pid)
        assert len(children) == 2  # the emulator and daphne
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(
        Path(f"/proc/{pid}").exists() for pid in children
    ):
        time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
