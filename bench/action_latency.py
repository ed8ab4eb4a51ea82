"""Action latency: from ``request_action`` to its Graph request arriving at the emulator.

Starts, on this machine and in this run:
  * the emulator (``python -m callbot.simulator``, daphne over TLS);
  * Callbot under daphne (the webhook: the call's notifications land here);
  * with REDIS_URL set, a Celery worker process on that broker (threads pool), the
    production shape; without it the bench measures the embedded default, where
    the task runs in-process when the request commits.

The bench process sets Django up against the same database, answers one incoming
call, then requests ``subscribe_to_tone`` on it ITERATIONS times, one after another
(each waits until the previous one is final). Each request's arrival time comes from
the emulator's request log (``GET /_emulator/requests``, ``receivedAt``, the same
clock), matched by the action's client-request-id.

The baseline, measured in the same run: the same Graph request sent straight from
this process with httpx and a cached token (no database, no broker, no worker).

    REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://postgres@127.0.0.1/test \\
        .venv/bin/python bench/action_latency.py [--iterations 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.emulator_to_callbot import Emulator, own_database, wait_for
from bench.stack import callbot_stack, quantiles


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument(
        "--profile", action="store_true", help="print where request_action spends time"
    )
    args = parser.parse_args()
    with own_database() as database_url:
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    with callbot_stack("action-latency", database_url) as stack:
        measure(args, stack.env, stack.emulator_url, stack.ca, stack.broker)


def measure(
    args: argparse.Namespace, env: dict[str, str], url: str, ca: Path, broker: bool
) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    import django

    django.setup()
    from django.db import connection

    from callbot.calls.models import Action, Call
    from callbot.calls.services import request_action
    from callbot.ivr.models import CallPolicy

    CallPolicy.objects.all().delete()
    emulator = Emulator(url, ca)
    if broker:
        time.sleep(2)  # let the worker finish connecting to the broker
    call_id = emulator.control.post(
        "/calls/incoming", json={"from": {"user": {"displayName": "Ana Lopez"}}}
    ).json()["callId"]
    wait_for(
        "the incoming call", lambda: Call.objects.filter(graph_id=call_id).exists()
    )
    call = Call.objects.get(graph_id=call_id)
    answer = request_action("answer", actor=None, call=call)
    wait_for(
        "the answer",
        lambda: Call.objects.filter(pk=call.pk, state="established").exists(),
    )
    del answer

    def arrivals() -> dict[str, float]:
        rows: list[dict[str, Any]] = emulator.control.get("/requests").json()["value"]
        return {r["clientRequestId"]: r["receivedAt"] for r in rows}

    # Warm up connections, tokens and caches on both paths.
    for _ in range(5):
        request_action("subscribe_to_tone", actor=None, call=call)
        emulator.graph.post(f"/communications/calls/{call_id}/subscribeToTone", json={})
    time.sleep(1)

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(50):
            request_action("subscribe_to_tone", actor=None, call=call)
            time.sleep(0.05)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

    callbot: list[float] = []
    requesting: list[float] = []
    for _ in range(args.iterations):
        started = time.time()
        action = request_action("subscribe_to_tone", actor=None, call=call)
        requesting.append((time.time() - started) * 1000)
        wait_for(
            "the action",
            lambda a=action: Action.objects.filter(
                pk=a.pk, status__in=["completed", "failed"]
            ).exists(),
        )
        if connection.vendor == "sqlite":
            connection.close()  # a fresh WAL snapshot for the next read
        arrived = arrivals().get(str(action.client_request_id))
        if arrived is None:
            raise SystemExit(f"action {action.pk} never reached the emulator")
        callbot.append((arrived - started) * 1000)

    bare: list[float] = []
    for _ in range(args.iterations):
        crid = str(uuid.uuid4())
        started = time.time()
        emulator.graph.post(
            f"/communications/calls/{call_id}/subscribeToTone",
            json={},
            headers={"client-request-id": crid},
        )
        bare.append((arrivals()[crid] - started) * 1000)

    db = "PostgreSQL" if env.get("DATABASE_URL") else "SQLite (WAL)"
    shape = "Redis broker, worker process" if broker else "in-process (eager) tasks"
    print(f"{args.iterations} actions (subscribeToTone), {db}, {shape}")
    for name, values in (
        ("request_action -> Graph", callbot),
        ("  of which request_action", requesting),
        ("bare httpx -> Graph", bare),
    ):
        p50, p99, _ = quantiles(values)
        mean = statistics.fmean(values)
        print(
            f"  {name:<26} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   mean {mean:6.2f} ms"
        )
    ratio = quantiles(callbot)[0] / max(quantiles(bare)[0], 1e-6)
    print(f"  p50 ratio to bare: {ratio:.1f}x")


if __name__ == "__main__":
    main()
