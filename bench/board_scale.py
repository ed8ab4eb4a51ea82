"""Live calls at scale: snapshot sizes and frames, the board's first paint, memory.

Starts, on this machine and in this run, Callbot under daphne on the embedded
default (SQLite under a temp dir), or on PostgreSQL/Redis when DATABASE_URL /
REDIS_URL are set (a database of its own, dropped afterwards), and beside it a bare
ASGI websocket endpoint under the same daphne (``bench/bare_ws.py``). Rows are
bulk-created with ``tests/dashboard/crowd.py`` (the newest call a meeting of
--people present). Then it prints:

* per board size (--sizes, default 1,000 and 10,000 live calls) the board
  snapshot a socket receives: its bytes, frames, largest frame, and the time from
  ``subscribe`` to its last part; and for the meeting, its call snapshot;
* the board's first paint in headless Chromium at each size: navigation to the
  first call row painted (the frame after it is in the DOM), and to every call
  counted, median of --paints loads; beside it the sign-in page's load
  (navigation to ``load``), the same browser's floor;
* memory per live call + subscriber: the server's RSS grown by --sockets
  websockets each watching its own live call (``subscribe {"call": id}``),
  divided by their number; the baseline is the bare endpoint's RSS grown by as
  many sockets, each sending one message. Both servers are warmed first by 50
  sockets opened and closed, so what is measured is what each further
  subscriber costs, not the process's first use of its code.

Every frame must stay under daphne's 1 MiB message limit; the bench says so.

    .venv/bin/python bench/board_scale.py [--sizes 1000 10000] [--people 5000] \\
        [--sockets 500] [--port 18400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets

from bench.dashboard_latency import CHROMIUM, PASSWORD, USER, sign_in
from bench.emulator_to_callbot import own_database
from bench.ingest import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FRAME_LIMIT = 2**20  # daphne (autobahn) refuses a message over 1 MiB


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit(f"no RSS for process {pid}")


def daphne(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-v", "0", "-p", str(port), app],
        cwd=ROOT,
        env=env,
    )
    wait_for_port(port, proc)
    return proc


def manage(env: dict[str, str], script: str) -> str:
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def populate(env: dict[str, str], calls: int, people: int) -> int:
    """``calls`` more live calls, the newest a meeting of ``people``; its id."""
    return int(
        manage(
            env,
            "from tests.dashboard import crowd\n"
            f"print(crowd.populate({calls}, {people}))\n",
        )
    )


async def snapshot(
    url: str, headers: dict[str, str], subscribe: dict[str, Any]
) -> dict[str, float]:
    """Subscribe once; the snapshot's bytes, frames, largest frame and time."""
    kind = "board.snapshot" if subscribe.get("board") else "call.snapshot"
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.recv()  # hello
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "subscribe", **subscribe}))
        sizes: list[int] = []
        rows = 0
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") != kind:
                continue
            sizes.append(len(raw.encode() if isinstance(raw, str) else raw))
            rows += len(message.get("calls") or message.get("participants") or [])
            if not message.get("more", False):
                break
        took = (time.perf_counter() - start) * 1000
    return {
        "bytes": sum(sizes),
        "frames": len(sizes),
        "largest": max(sizes),
        "ms": took,
        "rows": rows,
    }


FIRST_PAINT_PROBE = """(expected) => {
    window.__paint = {};
    const Native = window.WebSocket;
    window.WebSocket = function (...args) {
        const ws = new Native(...args);
        window.__paint.socket = performance.now();
        ws.addEventListener("open", () => { window.__paint.open = performance.now(); });
        ws.addEventListener("message", (event) => {
            if (window.__paint.part === undefined && event.data.startsWith('{"type":"board.snapshot"')) {
                window.__paint.part = performance.now();
            }
        });
        return ws;
    };
    window.WebSocket.prototype = Native.prototype;
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
    const seen = () => {
        const p = window.__paint;
        if (p.row === undefined && document.querySelector("#board-rows tr")) {
            p.row = -1;
            requestAnimationFrame(() => { p.row = performance.now(); });
        }
        const count = document.getElementById("call-count");
        if (p.counted === undefined && count && count.textContent === String(expected)) {
            p.counted = -1;
            requestAnimationFrame(() => { p.counted = performance.now(); });
        }
    };
    new MutationObserver(seen).observe(document, { subtree: true, childList: true, characterData: true });
}"""


async def first_paints(
    base: str, cookie: str, expected: int, loads: int
) -> tuple[list[float], list[float], list[float], int]:
    """Board loads: ms to the first row painted and to every call counted; the
    sign-in page's load; and the most rows the DOM held."""
    from playwright.async_api import async_playwright

    rows_ms: list[float] = []
    counted_ms: list[float] = []
    floor_ms: list[float] = []
    most_rows = 0
    steps: list[dict[str, float]] = []
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-sync"]
        )
        for _ in range(loads):
            context = await chromium.new_context(
                viewport={"width": 1440, "height": 900}
            )
            await context.add_cookies(
                [{"name": "sessionid", "value": cookie, "url": base}]
            )
            await context.add_init_script(
                f"({FIRST_PAINT_PROBE})({json.dumps(str(expected))})"
            )
            page = await context.new_page()
            await page.goto(f"{base}/")
            # Polled: wait_for_function evaluates a string, which the page's
            # Content-Security-Policy refuses.
            deadline = time.monotonic() + 120
            while not await page.evaluate("() => window.__paint?.counted > 0"):
                if time.monotonic() > deadline:
                    raise SystemExit("the board never counted every call")
                await asyncio.sleep(0.05)
            paint = await page.evaluate("window.__paint")
            paint["dom_ready"] = await page.evaluate(
                "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            )
            steps.append(paint)
            rows_ms.append(paint["row"])
            counted_ms.append(paint["counted"])
            most_rows = max(
                most_rows,
                await page.evaluate(
                    "document.querySelectorAll('#board-rows tr').length"
                ),
            )
            await page.goto(f"{base}/accounts/login/")
            floor_ms.append(
                await page.evaluate(
                    "performance.getEntriesByType('navigation')[0].loadEventEnd"
                )
            )
            await context.close()
        await chromium.close()
    # Where the first row's time goes, for the median load.
    middle = sorted(steps, key=lambda p: p["row"])[len(steps) // 2]
    print(
        f"  {expected} calls, a load's steps (ms from navigation): page ready "
        f"{middle['dom_ready']:.0f}, socket made {middle['socket']:.0f}, open "
        f"{middle['open']:.0f}, first board part {middle['part']:.0f}, first row "
        f"painted {middle['row']:.0f}, all counted {middle['counted']:.0f}"
    )
    return rows_ms, counted_ms, floor_ms, most_rows


async def hold_sockets(
    url: str, headers: dict[str, str], messages: list[dict[str, Any]], answer: str
) -> tuple[list[Any], float]:
    """One socket per message, each sent its message and answered; open ones back."""
    sockets = []
    start = time.perf_counter()
    for message in messages:
        ws = await websockets.connect(url, additional_headers=headers, max_size=None)
        await ws.send(json.dumps(message))
        while True:
            got = json.loads(await ws.recv())
            if got.get("type") == answer and not got.get("more", False):
                break
        sockets.append(ws)
    return sockets, (time.perf_counter() - start) * 1000


async def memory(
    server: subprocess.Popen[bytes],
    bare: subprocess.Popen[bytes],
    ws_url: str,
    bare_url: str,
    headers: dict[str, str],
    call_ids: list[int],
) -> tuple[float, float]:
    """KiB per live call + subscriber, and per bare socket, each server warmed
    first by WARM_SOCKETS sockets opened and closed the same way (imports, query
    and code caches filled once per process are not a subscriber's cost)."""
    for url, hdrs, first, answer in (
        (ws_url, headers, {"type": "subscribe", "call": call_ids[0]}, "call.snapshot"),
        (bare_url, {}, {"type": "ping"}, "pong"),
    ):
        warm, _ = await hold_sockets(url, hdrs, [first] * WARM_SOCKETS, answer)
        for ws in warm:
            await ws.close()
    await asyncio.sleep(1)
    before = rss_kib(server.pid)
    sockets, _ = await hold_sockets(
        ws_url,
        headers,
        [{"type": "subscribe", "call": i} for i in call_ids],
        "call.snapshot",
    )
    await asyncio.sleep(1)
    per_call = (rss_kib(server.pid) - before) / len(call_ids)
    bare_before = rss_kib(bare.pid)
    bare_sockets, _ = await hold_sockets(
        bare_url, {}, [{"type": "ping"}] * len(call_ids), "pong"
    )
    await asyncio.sleep(1)
    per_bare = (rss_kib(bare.pid) - bare_before) / len(call_ids)
    for ws in [*sockets, *bare_sockets]:
        await ws.close()
    return per_call, per_bare


# Sockets that open and close on each server before its memory is measured.
WARM_SOCKETS = 50


def kib(n: float) -> str:
    return f"{n / 1024:,.0f} KiB"


async def measure(
    args: argparse.Namespace, env: dict[str, str], ports: list[int]
) -> None:
    server = daphne("callbot.asgi:application", ports[0], env)
    bare = daphne("bench.bare_ws:application", ports[1], env)
    try:
        base = f"http://127.0.0.1:{ports[0]}"
        cookie = sign_in(base)
        headers = {"Cookie": f"sessionid={cookie}", "Origin": base}
        ws_url = f"ws://127.0.0.1:{ports[0]}/ws/live/"
        bare_url = f"ws://127.0.0.1:{ports[1]}/"
        live = 0
        meeting = 0
        sizes: list[tuple[int, dict[str, float]]] = []
        paints: list[tuple[int, list[float], list[float], list[float], int]] = []
        mem: tuple[float, float] | None = None
        for size in sorted(args.sizes):
            made = populate(env, size - live, args.people if not meeting else 0)
            meeting = meeting or made
            live = size
            if mem is None:
                # On a fresh process, before any large snapshot grew its heap.
                ids = json.loads(
                    manage(
                        env,
                        "import json\nfrom callbot.calls.models import Call\n"
                        "print(json.dumps(list(Call.objects.exclude(kind='meeting')"
                        f".values_list('pk', flat=True)[:{args.sockets}])))\n",
                    )
                )
                mem = await memory(server, bare, ws_url, bare_url, headers, ids)
            sizes.append((size, await snapshot(ws_url, headers, {"board": True})))
            if not args.no_browser and os.path.exists(CHROMIUM):  # noqa: ASYNC240
                paints.append(
                    (size, *await first_paints(base, cookie, size, args.paints))
                )
        call = await snapshot(ws_url, headers, {"call": meeting})
    finally:
        for proc in (server, bare):
            proc.terminate()
            proc.wait(timeout=10)
    report(args, sizes, call, paints, mem)


def report(
    args: argparse.Namespace,
    sizes: list[tuple[int, dict[str, float]]],
    call: dict[str, float],
    paints: list[tuple[int, list[float], list[float], list[float], int]],
    mem: tuple[float, float] | None,
) -> None:
    db = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (WAL)"
    layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory"
    print(f"board scale bench: {db}, {layer} channel layer, load {os.getloadavg()}")
    print(f"{'snapshot':34}{'bytes':>14}{'frames':>8}{'largest':>12}{'ms':>9}")
    largest = 0.0
    for size, s in sizes:
        print(
            f"{f'board, {size:,} live calls':34}{kib(s['bytes']):>14}"
            f"{s['frames']:>8}{kib(s['largest']):>12}{s['ms']:>9.0f}"
        )
        largest = max(largest, s["largest"])
    print(
        f"{f'call, {args.people:,}-person meeting':34}{kib(call['bytes']):>14}"
        f"{call['frames']:>8}{kib(call['largest']):>12}{call['ms']:>9.0f}"
    )
    largest = max(largest, call["largest"])
    verdict = "met" if largest < FRAME_LIMIT else "NOT met"
    print(f"largest frame {kib(largest)} vs the 1 MiB frame limit: {verdict}")
    for size, rows, counted, floor, most in paints:
        med = statistics.median(rows)
        print(
            f"first paint, {size:,} calls (median of {len(rows)}): first row "
            f"{med:.0f} ms, all counted {statistics.median(counted):.0f} ms; "
            f"sign-in page load {statistics.median(floor):.0f} ms (x{med / statistics.median(floor):.1f}); "
            f"rows in the DOM at most {most}"
        )
        if size >= 10_000:
            print(
                f"goal first paint < 1 s at {size:,}: {'met' if med < 1000 else 'NOT met'}"
            )
    if mem is not None:
        per_call, per_bare = mem
        print(
            f"RSS per live call + subscriber ({args.sockets} sockets): "
            f"{per_call:.1f} KiB; bare websocket {per_bare:.1f} KiB "
            f"(x{per_call / per_bare if per_bare > 0 else float('nan'):.1f}); "
            f"goal < 30 KB: {'met' if per_call * 1024 < 30_000 else 'NOT met'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--paints", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="and the next one")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    ports = [args.port, args.port + 1] if args.port else [free_port(), free_port()]

    workdir = Path(tempfile.mkdtemp(prefix="callbot-scale-bench-"))
    with ExitStack() as stack:
        database_url = stack.enter_context(own_database())
        env = {
            **os.environ,
            "CALLBOT_VAR_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        if database_url:
            env["DATABASE_URL"] = database_url
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        subprocess.run(
            [
                PYTHON,
                "manage.py",
                "create_user",
                USER,
                "--role",
                "auditor",
                "--password-stdin",
            ],
            cwd=ROOT,
            env=env,
            input=PASSWORD.encode(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        asyncio.run(measure(args, env, ports))


if __name__ == "__main__":
    main()
