"""CPU of the IVR's own work per answered call, in one process, without HTTP.

``bench/ivr_cpu.py`` measures a whole call across processes, webhook and
emulator included, and on a shared machine its figures move with the load. This
program runs only what the IVR and the worker do for one call, as the embedded
default does (tasks in-process, after each commit), against a scripted Graph:

1. the demo policy answers a new incoming call into the operator flow, and the
   answer is performed;
2. the "established" step asks for the tone subscription and the first prompt,
   and both are performed;
3. the caller hangs up: the step that ends the session.

Before parts 2 and 3 the call's new state is written as ingest would (one
UPDATE, timed and counted with the part).

It prints the CPU time (``time.process_time``) per call of each part and of
the three together, median and p90 over ``--calls`` calls after ``--warmup``
calls, and the statements each part sent for one call. Uses a fresh SQLite
database in a temp directory, or ``DATABASE_URL``'s.

    .venv/bin/python bench/ivr_steps.py [--calls 300]
    DATABASE_URL=postgres://... SECRET_KEY=... .venv/bin/python bench/ivr_steps.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARTS = ("answer", "established", "hang-up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("CALLBOT_VAR_DIR", tempfile.mkdtemp(prefix="ivr-steps-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Tasks run in this process after each commit, as on the embedded default.
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "1"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run(args.calls, args.warmup)


def run(calls: int, warmup: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from callbot.calls import perform
    from callbot.calls.models import Call
    from callbot.calls.states import CallState
    from callbot.ivr import runtime
    from callbot.ivr.demo import install_demo
    from tests.support.fake_graph import FakeGraph

    install_demo(enable_policies=True)
    fake = FakeGraph()
    perform.get_graph_client = lambda: fake  # type: ignore[assignment]

    def one_call() -> dict[str, Callable[[], Any]]:
        graph_id = str(uuid.uuid4())
        call = Call.objects.create(
            graph_id=graph_id,
            graph_key=graph_id,
            direction="incoming",
            kind="peer_to_peer",
            state=CallState.INCOMING,
            source_display="Caller",
            my_participant_id=str(uuid.uuid4()),
            targets=[{"identity": {"application": {"id": "bot"}}}],
        )

        def established() -> None:
            Call.objects.filter(pk=call.pk).update(state=CallState.ESTABLISHED)
            runtime.handle_activity(
                call.pk, state=CallState.ESTABLISHED, state_changed=True
            )

        def hang_up() -> None:
            Call.objects.filter(pk=call.pk).update(state=CallState.TERMINATED)
            runtime.handle_activity(
                call.pk, state=CallState.TERMINATED, state_changed=True, terminated=True
            )

        return {
            "answer": lambda: runtime.apply_policy(call.pk),
            "established": established,
            "hang-up": hang_up,
        }

    cpu: dict[str, list[float]] = {part: [] for part in PARTS}
    for i in range(warmup + calls):
        for part, work in one_call().items():
            started = time.process_time()
            work()
            spent = time.process_time() - started
            if i >= warmup:
                cpu[part].append(spent * 1000)

    counts = {}
    for part, work in one_call().items():
        with CaptureQueriesContext(connection) as queries:
            work()
        counts[part] = sum(
            1
            for q in queries.captured_queries
            if q["sql"].split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE"}
        )

    vendor = connection.vendor
    print(f"{calls} calls through the IVR in one process ({vendor}, tasks in-process)")
    totals = [sum(values) for values in zip(*cpu.values(), strict=True)]
    for part, values in [*cpu.items(), ("all three", totals)]:
        median = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        statements = sum(counts.values()) if part == "all three" else counts[part]
        print(
            f"  {part:<12} CPU per call  median {median:6.2f} ms  p90 {p90:6.2f} ms"
            f"  statements {statements}"
        )


if __name__ == "__main__":
    main()
