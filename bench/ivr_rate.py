"""Incoming IVR calls at a fixed rate for a while: does the backlog stay flat?

Starts the stack of ``bench/stack.py`` (the emulator, Callbot under daphne and,
with ``REDIS_URL``, a Celery worker), installs the demo IVR, makes one call
that is not counted, then has the emulator ring the bot ``--rate`` times a
second for ``--seconds`` seconds, on a fixed schedule (the k-th call rings at
start + k / rate, however late the earlier ones are). Each call is hung up once
the flow's first prompt reaches the emulator, as in ``bench/ivr_cpu.py``.

One poller reads the emulator's last Graph requests every 100 ms for the
answers and prompts; ring -> answer is the answer's ``receivedAt`` at the
emulator less the moment the bench asked the emulator to ring. Every second it
also samples the backlog: calls rung and not yet answered, the webhook inbox's
rows, actions still ``queued`` and, with a broker, the Celery queue's length.

Printed: per 10-second window (by ring time), calls rung, answered, p50 / p99
ring -> answer, and the largest backlog samples seen in the window; then the
whole run's p50 / p99, calls never answered, and Callbot's CPU per answered
call (daphne and the worker, from /proc, idle not subtracted). The backlog is
flat when the last windows' latencies and samples are those of the first.

    .venv/bin/python bench/ivr_rate.py [--rate 20] [--seconds 60]
    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... \\
        .venv/bin/python bench/ivr_rate.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ivr_cpu import cpu_seconds
from bench.stack import ROOT, Stack, callbot_stack, quantiles

WINDOW = 10.0
GIVE_UP = 30.0  # seconds after its ring a call counts as never answered


@dataclass
class Ringing:
    """One call the bench rang: when, and what reached the emulator for it."""

    rung_at: float  # wall clock, before the ring request
    answered_at: float | None = None  # the answer's receivedAt at the emulator
    hung_up: bool = False


@dataclass
class Run:
    calls: dict[str, Ringing] = field(default_factory=dict)
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    cpu: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    ringing_done: bool = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with callbot_stack("ivr-rate", os.environ.get("DATABASE_URL")) as stack:
        subprocess.run(
            [sys.executable, "manage.py", "demo_ivr"],
            cwd=ROOT,
            env=stack.env,
            check=True,
            capture_output=True,
        )
        asyncio.run(drive(stack, args.rate, args.seconds))


class Backlog:
    """Counts that grow when Callbot falls behind: inbox rows, queued actions,
    the broker's queue."""

    def __init__(self, stack: Stack) -> None:
        self.queue = stack.env["CELERY_QUEUE"]
        self.redis: Any = None
        if stack.broker:
            import redis

            self.redis = redis.Redis.from_url(stack.env["REDIS_URL"])
        url = stack.env.get("DATABASE_URL")
        if url:
            import psycopg

            self.db: Any = psycopg.connect(url, autocommit=True)
        else:
            path = Path(stack.env["CALLBOT_VAR_DIR"]) / "callbot.sqlite3"
            self.db = sqlite3.connect(
                path, isolation_level=None, timeout=5, check_same_thread=False
            )
            # The inbox's own file: its table is found there by name.
            self.db.execute(
                "ATTACH DATABASE ? AS inbox",
                [str(path.with_name("callbot-inbox.sqlite3"))],
            )

    def sample(self) -> dict[str, int]:
        cursor = self.db.cursor()
        cursor.execute("SELECT count(*) FROM calls_inboxbatch WHERE error = ''")
        inbox = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM calls_action WHERE status = 'queued'")
        queued = cursor.fetchone()[0]
        counts = {"inbox": inbox, "queued": queued}
        if self.redis is not None:
            keys = self.redis.scan_iter(match=f"{self.queue}*", _type="list")
            counts["broker"] = sum(self.redis.llen(k) for k in keys)
        return counts

    def close(self) -> None:
        self.db.close()
        if self.redis is not None:
            self.redis.close()


async def drive(stack: Stack, rate: float, seconds: float) -> None:
    verify = ssl.create_default_context(cafile=str(stack.ca))
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    control = httpx.AsyncClient(
        base_url=f"{stack.emulator_url}/_emulator",
        verify=verify,
        timeout=60,
        limits=limits,
    )
    pids = stack.pids
    ours = [pid for name, pid in pids.items() if name != "emulator"]
    backlog = Backlog(stack)
    run = Run()
    quiet = asyncio.Event()  # every call rung so far has been hung up
    await asyncio.sleep(3 if stack.broker else 1)  # the worker connects, beat ticks

    async def ring(name: str) -> None:
        rung_at = time.time()
        body = {"from": {"user": {"displayName": name}}}
        call_id = (await control.post("/calls/incoming", json=body)).json()["callId"]
        run.calls[call_id] = Ringing(rung_at)

    async def hang_up(call_id: str) -> None:
        await control.post(f"/calls/{call_id}/hangup")

    async def poll() -> None:
        """Answers and prompts at the emulator; hang up after the first prompt."""
        tasks: set[asyncio.Task[None]] = set()
        while True:
            rows = (await control.get("/requests")).json()["value"]
            for row in rows:
                parts = row["path"].rsplit("/", 2)
                if row["method"] != "POST" or len(parts) < 3:
                    continue
                call = run.calls.get(parts[1])
                if call is None:
                    continue
                if parts[2] == "answer" and call.answered_at is None:
                    call.answered_at = float(row["receivedAt"])
                elif parts[2] == "playPrompt" and not call.hung_up:
                    call.hung_up = True
                    task = asyncio.create_task(hang_up(parts[1]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if all(c.hung_up for c in run.calls.values()):
                if run.ringing_done:
                    return
                quiet.set()
            await asyncio.sleep(0.1)

    async def sample() -> None:
        while True:
            try:
                counts = await asyncio.to_thread(backlog.sample)
            except Exception as exc:
                print(f"backlog sample failed: {exc!r}", file=sys.stderr)
                counts = {}
            counts["unanswered"] = sum(
                1 for c in run.calls.values() if c.answered_at is None
            )
            run.samples.append((time.time(), counts))
            run.cpu.append((time.time(), {n: cpu_seconds(p) for n, p in pids.items()}))
            await asyncio.sleep(1)

    poller = asyncio.create_task(poll())
    sampler = asyncio.create_task(sample())
    # Not counted: opens connections, fetches tokens.
    await ring("Warm-up")
    quiet.clear()
    await quiet.wait()
    run.calls.clear()
    run.samples.clear()
    run.cpu.clear()

    total = int(rate * seconds)
    rings: list[asyncio.Task[None]] = []
    cpu_from = sum(cpu_seconds(p) for p in ours)
    start = time.monotonic()
    started_wall = time.time()
    for k in range(total):
        delay = start + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        rings.append(asyncio.create_task(ring(f"Caller {k}")))
    await asyncio.gather(*rings)
    run.ringing_done = True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(poller, GIVE_UP)
    cpu = sum(cpu_seconds(p) for p in ours) - cpu_from
    wall = time.monotonic() - start
    sampler.cancel()
    await control.aclose()
    backlog.close()
    report(stack, rate, seconds, run, started_wall, cpu, wall)


def report(
    stack: Stack,
    rate: float,
    seconds: float,
    run: Run,
    started: float,
    cpu: float,
    wall: float,
) -> None:
    db = "PostgreSQL" if stack.env.get("DATABASE_URL") else "SQLite (WAL)"
    shape = "Redis layer + worker process" if stack.broker else "in-process tasks"
    print(f"{rate:g} incoming IVR calls/s for {seconds:g} s, {db}, {shape}")
    names = sorted({k for _, counts in run.samples for k in counts})
    procs = sorted({k for _, cpus in run.cpu for k in cpus})
    header = "".join(f"{'max ' + n:>15}" for n in names)
    header += "".join(f"{n + ' %':>11}" for n in procs)
    print(f"  window    rung  answered   p50 ms   p99 ms{header}")
    windows = max(1, round(seconds / WINDOW))
    every: list[float] = []
    for w in range(windows):
        lo = started + w * WINDOW
        hi = started + (w + 1) * WINDOW if w < windows - 1 else float("inf")
        rung = [c for c in run.calls.values() if lo <= c.rung_at < hi]
        ms = [
            (c.answered_at - c.rung_at) * 1000
            for c in rung
            if c.answered_at is not None
        ]
        every += ms
        p50, p99, _ = quantiles(ms) if ms else (float("nan"),) * 3
        seen = [counts for t, counts in run.samples if lo <= t < hi]
        row = "".join(
            f"{max((s.get(n, 0) for s in seen), default=0):>15}" for n in names
        )
        cpus = [(t, c) for t, c in run.cpu if lo <= t < min(hi, lo + WINDOW + 1)]
        for n in procs:
            used = (cpus[-1][1][n] - cpus[0][1][n]) if len(cpus) > 1 else 0.0
            span = (cpus[-1][0] - cpus[0][0]) if len(cpus) > 1 else 1.0
            row += f"{used / span * 100:>11.0f}"
        print(
            f"  {w * WINDOW:3.0f}-{(w + 1) * WINDOW:<3.0f} {len(rung):6} {len(ms):9}"
            f" {p50:8.1f} {p99:8.1f}{row}"
        )
    answered = len(every)
    p50, p99, top = quantiles(every) if every else (float("nan"),) * 3
    print(
        f"  all       {len(run.calls):6} {answered:9} {p50:8.1f} {p99:8.1f}"
        f"  (max {top:.1f} ms; {len(run.calls) - answered} never answered)"
    )
    print(
        f"  Callbot CPU per answered call {cpu / max(answered, 1) * 1000:.1f} ms"
        f" ({cpu / wall * 100:.0f} % of one core over {wall:.0f} s, idle included)"
    )


if __name__ == "__main__":
    main()
