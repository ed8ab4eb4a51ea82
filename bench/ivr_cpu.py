"""CPU per answered IVR call, and the time from a ring to the answer at Graph.

Starts the emulator, Callbot under daphne and (with ``REDIS_URL``) a Celery worker
(``bench/stack.py``), installs the demo IVR (its peer-to-peer policy answers every
call into the "operator" flow), then rings the bot ``--calls`` times, one after
the other. For each call: the emulator rings (t0), Callbot's answer reaches the
emulator, the flow's first prompt is played, and the caller hangs up.

Each call is followed by one to a bare bot (``bench/bare_bot.py``, under the
same daphne) that answers from its webhook, nothing else: the baseline, rung in
the same run, for ring -> answer. One call of each is made first and not counted
(connections, tokens).

Printed:
- ring -> answer request at the emulator, p50 / p99 / max, Callbot's and the
  bare bot's, and their ratio;
- CPU seconds (user + system, from /proc) per answered call of Callbot's
  processes (daphne with its children, such as the webhook inbox's applier, and
  the worker with a broker), with their idle CPU for the same wall time
  subtracted (measured before the calls);
- the emulator's CPU per call beside it: the other side of each call in the same
  run, a yardstick for how much work one call is.

    .venv/bin/python bench/ivr_cpu.py [--calls 100]
    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... \\
        .venv/bin/python bench/ivr_cpu.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.emulator_to_callbot import DAPHNE, free_port, listening, wait_for
from bench.stack import ROOT, Stack, callbot_stack, quantiles

TICKS = os.sysconf("SC_CLK_TCK")
IDLE_SECONDS = 5.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and of its running descendants so far.

    The descendants count: with PostgreSQL the web process applies its webhook
    batches in a child process (``calls/inboxapplier.py``), whose CPU a read
    of the web process's own ``stat`` leaves out.
    """
    total = 0.0
    for each in _tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # ended since it was listed
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants now running, from ``/proc/*/task/*/children``."""
    found = [pid]
    for each in found:
        for children in Path(f"/proc/{each}/task").glob("*/children"):
            try:
                found.extend(int(c) for c in children.read_text().split())
            except FileNotFoundError:
                continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    with callbot_stack("ivr-cpu", os.environ.get("DATABASE_URL")) as stack:
        subprocess.run(
            [sys.executable, "manage.py", "demo_ivr"],
            cwd=ROOT,
            env=stack.env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        bare = subprocess.Popen(
            [*DAPHNE, "-p", str(port), "bench.bare_bot:application"],
            cwd=ROOT,
            env=stack.env,
        )
        try:
            wait_for(f"port {port}", lambda: listening(port))
            bare_url = f"http://127.0.0.1:{port}/api/calling/callback"
            asyncio.run(measure(stack, args.calls, bare_url))
        finally:
            bare.terminate()
            bare.wait(timeout=20)


async def measure(stack: Stack, calls: int, bare_url: str) -> None:
    verify = ssl.create_default_context(cafile=str(stack.ca))
    control = httpx.AsyncClient(
        base_url=f"{stack.emulator_url}/_emulator", verify=verify, timeout=30
    )
    ours = {name: pid for name, pid in stack.pids.items() if name != "emulator"}
    await asyncio.sleep(3 if stack.broker else 1)  # the worker connects, beat ticks

    # Idle: what Callbot's processes burn with no call (sweeps, pulse, polling).
    idle_from = {name: cpu_seconds(pid) for name, pid in ours.items()}
    await asyncio.sleep(IDLE_SECONDS)
    idle_rates = {
        name: (cpu_seconds(pid) - idle_from[name]) / IDLE_SECONDS
        for name, pid in ours.items()
    }
    idle_rate = sum(idle_rates.values())

    async def posts(path: str) -> float | None:
        rows = (await control.get("/requests")).json()["value"]
        for row in rows:
            if row["method"] == "POST" and row["path"] == path:
                return float(row["receivedAt"])
        return None

    async def until(what: str, check: Any, within: float = 20) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.005)
        raise SystemExit(f"timed out waiting for {what}")

    async def ring(name: str, callback: str | None = None) -> tuple[str, float]:
        """Ring, wait for the answer; the call's id and ms from ring to answer."""
        body: dict[str, Any] = {"from": {"user": {"displayName": name}}}
        if callback is not None:
            body["callbackUri"] = callback
        t0 = time.time()
        call_id = (await control.post("/calls/incoming", json=body)).json()["callId"]
        path = f"/v1.0/communications/calls/{call_id}/answer"
        arrived = await until("the answer", lambda: posts(path))
        return call_id, (arrived - t0) * 1000

    async def callbot_call(name: str) -> float:
        call_id, ms = await ring(name)
        prompt = f"/v1.0/communications/calls/{call_id}/playPrompt"
        await until("the first prompt", lambda: posts(prompt))
        await control.post(f"/calls/{call_id}/hangup")
        return ms

    async def bare_call(name: str) -> float:
        call_id, ms = await ring(name, bare_url)
        await control.post(f"/calls/{call_id}/hangup")
        return ms

    # Not counted: the first call of each opens connections and fetches tokens.
    await callbot_call("Warm-up")
    await bare_call("Warm-up (bare)")
    await asyncio.sleep(1)

    answer_ms: list[float] = []
    bare_ms: list[float] = []
    emulator_cpu = 0.0
    started = time.monotonic()
    ours_from = {name: cpu_seconds(pid) for name, pid in ours.items()}
    for i in range(calls):
        emulator_from = cpu_seconds(stack.pids["emulator"])
        answer_ms.append(await callbot_call(f"Caller {i}"))
        # The emulator's CPU for the bare bot's calls is left out.
        emulator_cpu += cpu_seconds(stack.pids["emulator"]) - emulator_from
        bare_ms.append(await bare_call(f"Caller {i} (bare)"))
    # Let the hang-ups' notifications and their work finish.
    await asyncio.sleep(2)
    wall = time.monotonic() - started
    each = {
        name: cpu_seconds(pid) - ours_from[name] - idle_rates[name] * wall
        for name, pid in ours.items()
    }
    await control.aclose()
    report(stack, calls, answer_ms, bare_ms, each, emulator_cpu, idle_rate)


def report(
    stack: Stack,
    calls: int,
    answer_ms: list[float],
    bare_ms: list[float],
    each: dict[str, float],
    emulator_cpu: float,
    idle_rate: float,
) -> None:
    ours_cpu = sum(each.values())
    db = "PostgreSQL" if stack.env.get("DATABASE_URL") else "SQLite (WAL)"
    shape = "Redis layer + worker process" if stack.broker else "in-process tasks"
    p50, p99, top = quantiles(answer_ms)
    bare50, bare99, bare_top = quantiles(bare_ms)
    print(f"{calls} incoming calls answered into the IVR, {db}, {shape}")
    print(
        f"  ring -> answer at the emulator  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {top:7.1f} ms"
    )
    print(
        f"  the same, bare bot (baseline)   p50 {bare50:7.1f} ms  p99 {bare99:7.1f} ms  max {bare_top:7.1f} ms"
    )
    print(
        f"  ratio Callbot / bare bot        p50 {p50 / max(bare50, 1e-9):7.2f}x  p99 {p99 / max(bare99, 1e-9):7.2f}x"
    )
    print(
        f"  Callbot CPU per answered call   {ours_cpu / calls * 1000:7.1f} ms (idle {idle_rate * 1000:.1f} ms/s subtracted)"
    )
    if len(each) > 1:
        split = ", ".join(f"{n} {c / calls * 1000:.1f} ms" for n, c in each.items())
        print(f"    of which                      {split}")
    print(
        f"  emulator CPU per call           {emulator_cpu / calls * 1000:7.1f} ms (the other side, same run)"
    )
    print(
        f"  ratio Callbot / emulator        {ours_cpu / max(emulator_cpu, 1e-9):7.2f}x"
    )


if __name__ == "__main__":
    main()
