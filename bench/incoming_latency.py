"""Incoming-call latency: a call rings → a supervisor's browser shows the ringing row;
the supervisor clicks Answer → the answer request reaches Graph (the emulator).

Starts, on this machine and in this run:
  * the emulator (``python -m callbot.simulator``, daphne over TLS);
  * Callbot under daphne on the embedded default (its own SQLite under a temp dir),
    or on PostgreSQL when DATABASE_URL is set (a database of its own, dropped
    afterwards); with REDIS_URL set, a Celery worker process on that broker too;
  * a supervisor signed in twice: one websocket client on the board, and one
    headless Chromium page on the board (unless --no-browser).

No call policy is installed, as on a real tenant: every call rings undecided.
One call is rung first and not counted (it opens the processes' connections
and fetches their tokens: start-up, not a ring). Then, --iterations times, one
after another:
  1. the emulator rings the bot (``POST /_emulator/calls/incoming``, time t0);
  2. the websocket client's first board delta for that call, and the page's
     ringing card for it (a MutationObserver on the ringing list), are timed
     against t0 (same machine clock);
  3. the page clicks that card's Answer button (time t1, in the page), and the
     answer request's arrival at the emulator (its request log, ``receivedAt``)
     is timed against t1;
  4. the caller hangs up once the call is established.

The baseline, measured in the same run: a bare channel-layer round trip (one
group_send to one channel until it is received), on the same kind of layer
(in-memory in one process, or Redis).

    .venv/bin/python bench/incoming_latency.py [--iterations 50] [--no-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import websockets

from bench import hops
from bench.dashboard_latency import (
    CHROMIUM,
    PASSWORD,
    USER,
    layer_round_trips,
    sign_in,
)
from bench.emulator_to_callbot import own_database
from bench.stack import callbot_stack, quantiles

GOAL_P99_MS = 100.0

# In the page: record when each ringing card appears, keyed by the call's Graph id
# (the caller link's title), on the machine's wall clock.
RING_PROBE = """() => {
    window.rang = {};
    new MutationObserver((records) => {
        const at = performance.timeOrigin + performance.now();
        for (const r of records) {
            for (const node of r.addedNodes) {
                if (node.nodeType !== 1 || !node.matches(".ring-card")) continue;
                const id = node.querySelector(".caller")?.title;
                if (id && !(id in window.rang)) window.rang[id] = at;
            }
        }
    }).observe(document.querySelector("#ringing .ringing-list"), { childList: true });
}"""

# Click the card's Answer button; the time of the click, on the same clock.
CLICK_ANSWER = """(graphId) => {
    const card = [...document.querySelectorAll("#ringing .ring-card")]
        .find((li) => li.querySelector(".caller")?.title === graphId);
    const button = card.querySelector("button[data-kind=answer]");
    const at = performance.timeOrigin + performance.now();
    button.click();
    return at;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument(
        "--hops", action="store_true", help="print each hop's time (bench/hops.py)"
    )
    args = parser.parse_args()
    args.hop_log = hops.start() if args.hops else None
    with own_database() as database_url:
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    # The supervisor here answers a call every few hundred ms for minutes: a
    # script's pace, which the socket's action budget refuses after its burst of
    # 30 (the refused click never reaches Graph). The budget is not measured.
    os.environ.setdefault("LIVE_ACTION_BURST", str(args.iterations + 10))
    with callbot_stack(
        "incoming-latency", database_url, supervisor=(USER, PASSWORD)
    ) as stack:
        os.environ.update(stack.env)
        asyncio.run(
            measure(args, stack.base, stack.emulator_url, stack.ca, stack.broker)
        )


class BoardClient:
    """A supervisor's websocket on the board: when each call's first row arrived."""

    def __init__(self) -> None:
        self.first_row: dict[str, float] = {}
        self.ready = asyncio.Event()

    async def run(self, url: str, cookie: str, origin: str) -> None:
        headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "subscribe", "board": True}))
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                if message.get("type") == "board.snapshot":
                    self.ready.set()
                elif message.get("type") == "calls.delta":
                    graph_id = message["call"].get("graph_id")
                    if graph_id and graph_id not in self.first_row:
                        self.first_row[graph_id] = now


async def open_board(base: str, cookie: str) -> tuple[Any, Any]:
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    chromium = await playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-background-networking", "--disable-sync"],
    )
    context = await chromium.new_context()
    await context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
    page = await context.new_page()
    await page.goto(f"{base}/")
    await page.wait_for_selector("body[data-live=connected]")
    await page.evaluate(RING_PROBE)

    async def close() -> None:
        await chromium.close()
        await playwright.stop()

    return page, close


async def until(what: str, check: Any, within: float = 10) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def measure(
    args: argparse.Namespace, base: str, emulator_url: str, ca: Path, broker: bool
) -> None:
    verify = ssl.create_default_context(cafile=str(ca))
    control = httpx.AsyncClient(
        base_url=f"{emulator_url}/_emulator", verify=verify, timeout=30
    )
    if broker:
        await asyncio.sleep(2)  # let the worker finish connecting to the broker
    cookie = sign_in(base)
    client = BoardClient()
    ws_url = base.replace("http://", "ws://") + "/ws/live/"
    watching = asyncio.create_task(client.run(ws_url, cookie, base))
    await asyncio.wait_for(client.ready.wait(), timeout=30)
    page = close_browser = None
    if not args.no_browser and os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once)
        page, close_browser = await open_board(base, cookie)

    async def requests_seen() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await control.get("/requests")).json()["value"]
        return rows

    async def state_of(graph_id: str) -> str:
        return str((await control.get(f"/calls/{graph_id}")).json()["state"])

    socket_ms: list[float] = []
    page_ms: list[float] = []
    answer_ms: list[float] = []
    warmup_ms = 0.0
    for i in range(-1, args.iterations):
        counted = i >= 0  # the first ring warms up and is not counted
        caller = {"user": {"displayName": f"Caller {i}" if counted else "Warm-up"}}
        t0 = time.time()
        answer = await control.post("/calls/incoming", json={"from": caller})
        graph_id = answer.json()["callId"]
        # Waited for longer than a counted ring: a process may still be starting.
        await until(
            "the board delta",
            lambda g=graph_id: _has(client.first_row, g),
            within=10 if counted else 60,
        )
        ring_ms = (client.first_row[graph_id] - t0) * 1000
        if counted:
            socket_ms.append(ring_ms)
        else:
            warmup_ms = ring_ms
        if page is None:
            await control.post(f"/calls/{graph_id}/hangup")
            continue
        # (The page's CSP forbids eval, so no wait_for_function: poll instead.)
        rang_at = await until(
            "the ringing row",
            lambda g=graph_id: page.evaluate("(id) => window.rang[id]", g),
        )
        clicked = await page.evaluate(CLICK_ANSWER, graph_id)
        path = f"/v1.0/communications/calls/{graph_id}/answer"
        arrived = await until(
            "the answer at the emulator",
            lambda p=path: _arrival(requests_seen, p),
        )
        if counted:
            page_ms.append(rang_at - t0 * 1000)
            hops.mark(args.hop_log, "t0", graph_id, t0)
            hops.mark(args.hop_log, "socket", graph_id, client.first_row[graph_id])
            hops.mark(args.hop_log, "dom", graph_id, rang_at / 1000)
            answer_ms.append(arrived * 1000 - clicked)
        await until(
            "the call to be established",
            lambda g=graph_id: _is(state_of, g, "established"),
        )
        await control.post(f"/calls/{graph_id}/hangup")
    if close_browser is not None:
        await close_browser()
    watching.cancel()
    await control.aclose()
    baseline = await layer_round_trips(1, max(args.iterations, 100))
    report(args, broker, socket_ms, page_ms, answer_ms, baseline)
    print(f"  (the warm-up ring, not counted: ring -> board delta {warmup_ms:.0f} ms)")
    if args.hop_log is not None:
        hops.report(args.hop_log)


async def _has(seen: dict[str, float], key: str) -> bool:
    return key in seen


async def _is(state_of: Any, graph_id: str, state: str) -> bool:
    return bool(await state_of(graph_id) == state)


async def _arrival(requests_seen: Any, path: str) -> float | None:
    for row in await requests_seen():
        if row["method"] == "POST" and row["path"] == path:
            return float(row["receivedAt"])
    return None


def report(
    args: argparse.Namespace,
    broker: bool,
    socket_ms: list[float],
    page_ms: list[float],
    answer_ms: list[float],
    baseline: list[float],
) -> None:
    db = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (WAL)"
    shape = "Redis layer + worker process" if broker else "in-memory layer, eager tasks"
    print(f"{args.iterations} incoming calls, {db}, {shape}")
    rows = [
        ("ring -> board delta (socket)", socket_ms),
        ("ring -> ringing row (browser)", page_ms),
        ("click Answer -> answer at Graph", answer_ms),
        ("bare channel layer round trip", baseline),
    ]
    for name, values in rows:
        if not values:
            print(f"  {name:<32} (not measured)")
            continue
        p50, p99, worst = quantiles(values)
        goal = ""
        if values is not baseline and values is not socket_ms:
            goal = (
                "  ok" if p99 < GOAL_P99_MS else f"  over the {GOAL_P99_MS:.0f} ms goal"
            )
        print(
            f"  {name:<32} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   max {worst:7.2f} ms{goal}"
        )
    bare = quantiles(baseline)[0]
    for name, values in rows[1:3]:
        if values:
            print(
                f"  {name} p50 / bare p50: {quantiles(values)[0] / max(bare, 1e-6):.0f}x"
            )


if __name__ == "__main__":
    main()
