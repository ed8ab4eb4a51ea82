"""The board pulse's cost: one read of the KPIs and the open alerts, and one sweep of
the alert rules, on a board of many live calls.

Builds, in a database of its own, CALLS live calls (a third meetings of PEOPLE
people each, a tenth ringing, the rest peer-to-peer), as many calls ended in the
last hour with a failed action each, and ALERTS open alerts; then times, over
ROUNDS rounds, ``pulse.read_pulse`` (what each web process runs every
BOARD_PULSE_SECONDS) and ``alerts.evaluate_alerts`` (beat's sweep). The baseline,
in the same run: ``Call.objects.count()`` of the live calls, the cheapest query
over the same rows.

    [DATABASE_URL=postgres://postgres@127.0.0.1/x] .venv/bin/python bench/board_pulse.py \\
        [--calls 2000] [--people 30] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.emulator_to_callbot import own_database

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], Any], rounds: int) -> float:
    """The median of ``rounds`` runs of ``fn``, in milliseconds."""
    runs = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def build(calls: int, people: int) -> None:
    from django.utils import timezone

    from callbot.calls.alerts import raise_alert
    from callbot.calls.models import Action, Call, Participant

    now = timezone.now()
    rows = []
    for i in range(calls):
        kind = "meeting" if i % 3 == 0 else "peer_to_peer"
        state = "incoming" if i % 10 == 1 else "established"
        rows.append(
            Call(
                graph_id=f"live-{i}",
                graph_key=f"live{i}",
                kind=kind,
                state=state,
                direction="incoming",
                subject=f"Call {i}",
                established_at=None if state == "incoming" else now,
            )
        )
        rows.append(
            Call(
                graph_id=f"ended-{i}",
                graph_key=f"ended{i}",
                state="terminated",
                direction="incoming",
                established_at=now - timedelta(minutes=30),
                terminated_at=now - timedelta(minutes=10),
            )
        )
    made = Call.objects.bulk_create(rows, batch_size=1000)
    meetings = [c for c in made if c.kind == "meeting"]
    Participant.objects.bulk_create(
        [
            Participant(
                call=c,
                graph_id=f"{c.pk}-{n}",
                graph_key=f"{c.pk}{n}",
                display_name=f"Person {n}",
                joined_at=now,
            )
            for c in meetings
            for n in range(people)
        ],
        batch_size=2000,
    )
    Action.objects.bulk_create(
        [
            Action(call=c, kind="play_prompt", status="failed", completed_at=now)
            for c in made
            if c.state == "terminated"
        ],
        batch_size=1000,
    )
    for c in made[: min(50, len(made)) : 2]:
        raise_alert("action_failed", c, "bench")


def run(args: argparse.Namespace, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as var:
        env = {**os.environ, "CALLBOT_VAR_DIR": var}
        if database_url:
            env["DATABASE_URL"] = database_url
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
        import django

        django.setup()
        from callbot.calls.alerts import evaluate_alerts
        from callbot.calls.models import Call
        from dashboard.pulse import read_pulse

        build(args.calls, args.people)
        live = Call.objects.exclude(state="terminated")
        baseline = timed(live.count, args.rounds)
        pulse = timed(read_pulse, args.rounds)
        sweep = timed(evaluate_alerts, args.rounds)
        backend = "PostgreSQL" if database_url else "SQLite"
        print(f"{backend}: {args.calls} live calls, {args.people} people per meeting")
        print(f"  baseline count(*) of live calls  {baseline:8.2f} ms")
        print(
            f"  board pulse (KPIs + alerts)      {pulse:8.2f} ms  ({pulse / baseline:.1f}x)"
        )
        print(
            f"  alert rule sweep                 {sweep:8.2f} ms  ({sweep / baseline:.1f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with own_database() as database_url:
        run(args, database_url)


if __name__ == "__main__":
    main()
