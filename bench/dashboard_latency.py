"""Dashboard latency: from a notification reaching the webhook to the browsers' update.

Starts, on this machine and in this run:
  * a JWKS server with a fresh RSA key (the stand-in for Microsoft's signing keys);
  * Callbot under daphne on the embedded default (its own SQLite under a temp dir),
    or on PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set (a database of its
    own on that server, dropped afterwards);
  * --calls live group calls (rosters of --roster people), made by signed
    notifications;
  * --clients websocket clients signed in with a session cookie, each watching the
    board, and one headless Chromium page on the board (unless --no-browser).

Then, --iterations times, one after another: POST one signed roster notification in
which one person of one call toggles mute, and time until every client has the
board delta for that call (t_client - t_post), and until the Chromium page's DOM
row for that call changed (a MutationObserver, same machine clock).

The baseline, measured in the same run: a bare channel-layer round trip, group_send
to a group of --clients channels until all of them received it, on the same kind of
layer (in-memory in one process, or Redis).

    .venv/bin/python bench/dashboard_latency.py [--calls 100] [--clients 50]
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
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import websockets

from bench import hops
from bench.emulator_to_callbot import own_database
from bench.ingest import Keys, free_port, participant, serve_jwks, wait_for_port
from bench.stack import quantiles

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
USER, PASSWORD = "bench-watcher", "bench-watcher-pw"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# Issue 13: notification -> Chromium DOM, 100 calls and 50 sockets, on both setups.
GOAL_P50_MS = 20
GOAL_P99_MS = 100


def roster_batch(call: str, roster: int, muted: int | None) -> bytes:
    data = [participant(i, muted=(i == muted)) for i in range(roster)]
    return json.dumps(
        {
            "value": [
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call}/participants",
                    "resourceData": data,
                }
            ]
        }
    ).encode()


def call_batch(call: str) -> bytes:
    return json.dumps(
        {
            "value": [
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.call",
                        "id": call,
                        "state": "established",
                        "direction": "outgoing",
                        "subject": f"Bench call {call[:8]}",
                    },
                }
            ]
        }
    ).encode()


def sign_in(base: str) -> str:
    """A session cookie for the watcher, through the sign-in form."""
    with httpx.Client(base_url=base, follow_redirects=False) as client:
        client.get("/accounts/login/")
        answer = client.post(
            "/accounts/login/",
            data={
                "username": USER,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": f"{base}/accounts/login/"},
        )
        if answer.status_code != 302:
            raise SystemExit(f"sign-in failed: {answer.status_code}")
        return str(client.cookies["sessionid"])


class Watcher:
    """One websocket client on the board: records when each call's delta arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[int, list[float]] = {}
        self.ready = asyncio.Event()
        self.calls_seen = 0

    async def run(self, url: str, cookie: str, origin: str) -> None:
        headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
        async with websockets.connect(
            url, additional_headers=headers, max_size=None
        ) as ws:
            await ws.send(json.dumps({"type": "subscribe", "board": True}))
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "calls.delta":
                    self.arrivals.setdefault(message["call"]["id"], []).append(now)
                elif kind == "board.snapshot":
                    # Snapshots come in parts; ready once the last is in
                    # (``more`` false).
                    if message.get("part", 1) == 1:
                        self.calls_seen = 0
                    self.calls_seen += len(message["calls"])
                    if not message.get("more", False):
                        self.ready.set()


async def layer_round_trips(fanout: int, rounds: int) -> list[float]:
    """group_send to ``fanout`` channels until all received, on a layer like the server's."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    import django

    django.setup()
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise SystemExit("no channel layer configured")
    group = f"bench.{uuid.uuid4().hex}"
    channels = [await layer.new_channel() for _ in range(fanout)]
    for channel in channels:
        await layer.group_add(group, channel)
    times: list[float] = []
    for i in range(rounds):
        start = time.perf_counter()
        await layer.group_send(group, {"type": "calls.delta", "call": {"id": i}})
        await asyncio.gather(*(layer.receive(c) for c in channels))
        times.append((time.perf_counter() - start) * 1000)
    for channel in channels:
        await layer.group_discard(group, channel)
    return times


# Before the page's scripts: when each board delta reached the page's socket, so the
# page's own work (socket -> DOM) is told apart from the server's.
SOCKET_PROBE = """(() => {
    window.socketArrivals = [];
    const Native = window.WebSocket;
    window.WebSocket = function (...args) {
        const ws = new Native(...args);
        ws.addEventListener("message", (event) => {
            const at = performance.timeOrigin + performance.now();
            if (!event.data.startsWith('{"type":"calls.delta"')) return;
            window.socketArrivals.push([JSON.parse(event.data).call.id, at]);
        });
        return ws;
    };
    window.WebSocket.prototype = Native.prototype;
    Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();"""

DOM_PROBE = """() => {
    window.domUpdates = [];
    new MutationObserver((records) => {
        const at = performance.timeOrigin + performance.now();
        const ids = new Set();
        for (const r of records) {
            const row = (r.target.nodeType === 1 ? r.target : r.target.parentElement)
                .closest("tr[data-call-id]");
            if (row) ids.add(Number(row.dataset.callId));
        }
        for (const id of ids) window.domUpdates.push([id, at]);
    }).observe(document.getElementById("board-rows"),
               { subtree: true, childList: true, characterData: true, attributes: true });
}"""


async def open_browser(base: str, cookie: str) -> Any:
    from playwright.async_api import async_playwright

    playwright = await async_playwright().start()
    chromium = await playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    context = await chromium.new_context()
    await context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
    await context.add_init_script(SOCKET_PROBE)
    page = await context.new_page()
    await page.goto(f"{base}/")
    await page.wait_for_selector("body[data-live=connected]")
    # Polled: wait_for_function evaluates a string, which the page's
    # Content-Security-Policy may refuse.
    deadline = time.monotonic() + 60
    while not await page.evaluate(
        "() => document.querySelectorAll('#board-rows tr').length > 0"
    ):
        if time.monotonic() > deadline:
            raise SystemExit("the board never showed a row")
        await asyncio.sleep(0.05)
    await page.evaluate(DOM_PROBE)

    async def close() -> None:
        await chromium.close()
        await playwright.stop()

    return page, close


async def measure(args: argparse.Namespace, base: str, keys: Keys) -> None:
    webhook = f"{base}/api/calling/callback"
    headers = {
        "Authorization": f"Bearer {keys.token()}",
        "Content-Type": "application/json",
    }
    calls = [str(uuid.uuid4()) for _ in range(args.calls)]
    async with httpx.AsyncClient(timeout=30) as http:
        last_server_ms = [0.0]

        async def post(body: bytes) -> None:
            answer = await http.post(
                webhook,
                content=body,
                headers={**headers, "X-Microsoft-Skype-Message-ID": uuid.uuid4().hex},
            )
            if answer.status_code != 202:
                raise SystemExit(f"webhook: {answer.status_code} {answer.text[:200]}")
            timing = answer.headers.get("server-timing", "")
            if "dur=" in timing:
                last_server_ms[0] = float(timing.split("dur=")[1])

        for call in calls:
            await post(call_batch(call))
            await post(roster_batch(call, args.roster, None))

        cookie = sign_in(base)
        watchers = [Watcher() for _ in range(args.clients)]
        ws_url = base.replace("http://", "ws://") + "/ws/live/"
        tasks = [asyncio.create_task(w.run(ws_url, cookie, base)) for w in watchers]
        await asyncio.wait_for(
            asyncio.gather(*(w.ready.wait() for w in watchers)), timeout=60
        )
        live = watchers[0].calls_seen
        page = close_browser = None
        if not args.no_browser and os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once)
            page, close_browser = await open_browser(base, cookie)

        # Ids the board uses for our calls: ask once through a client's snapshot.
        id_of = await board_ids(ws_url, cookie, base)
        # One uncounted change before measuring: the applier takes stored batches
        # in order, so once its delta reached every client the setup's batches
        # are applied and the first iterations do not wait behind them.
        warm_id = id_of[f"Bench call {calls[-1][:8]}"]
        seen = [len(w.arrivals.get(warm_id, [])) for w in watchers]
        await post(roster_batch(calls[-1], args.roster, 1 % args.roster))
        deadline = time.monotonic() + 60
        while any(
            len(w.arrivals.get(warm_id, [])) <= n
            for w, n in zip(watchers, seen, strict=True)
        ):
            if time.monotonic() > deadline:
                raise SystemExit("warm-up: not every client got the delta")
            await asyncio.sleep(0.005)
        client_ms: list[float] = []
        first_ms: list[float] = []
        server_ms: list[float] = []
        dom_ms: list[float] = []
        page_ms: list[float] = []
        posted: list[tuple[int, float]] = []
        posted_calls: list[str] = []
        for i in range(args.iterations):
            call = calls[i % len(calls)]
            board_id = id_of[f"Bench call {call[:8]}"]
            before = [len(w.arrivals.get(board_id, [])) for w in watchers]
            # Rounds over the calls alternate "someone muted" and "nobody muted", so
            # every POST changes that call's roster.
            round_ = i // len(calls)
            muted = None if round_ % 2 else round_ % args.roster
            body = roster_batch(call, args.roster, muted)
            t0 = time.time()
            await post(body)
            deadline = time.monotonic() + 10
            while any(
                len(w.arrivals.get(board_id, [])) <= n
                for w, n in zip(watchers, before, strict=True)
            ):
                if time.monotonic() > deadline:
                    raise SystemExit(f"iteration {i}: not every client got the delta")
                await asyncio.sleep(0.0005)
            got = [
                (w.arrivals[board_id][n] - t0) * 1000
                for w, n in zip(watchers, before, strict=True)
            ]
            client_ms.extend(got)
            first_ms.append(min(got))
            server_ms.append(last_server_ms[0])
            posted.append((board_id, t0 * 1000))
            posted_calls.append(call)
            hops.mark(args.hop_log, "t0", call, t0)
            hops.mark(args.hop_log, "socket", call, t0 + min(got) / 1000)
        if page is not None:
            await page.wait_for_timeout(200)  # the last frame's DOM write
            updates: list[list[float]] = await page.evaluate("window.domUpdates")
            arrivals: list[list[float]] = await page.evaluate("window.socketArrivals")
            dom_ms = match_dom(posted, updates)
            if args.hop_log is not None:
                for call, (board_id, t0_ms) in zip(posted_calls, posted, strict=True):
                    shown = match_dom([(board_id, t0_ms)], updates)
                    if shown:
                        hops.mark(args.hop_log, "dom", call, (t0_ms + shown[0]) / 1000)
            page_ms = page_work(posted, arrivals, updates)
            await close_browser()
        for task in tasks:
            task.cancel()
    baseline = await layer_round_trips(args.clients, args.iterations)
    report(args, live, client_ms, dom_ms, page_ms, baseline, first_ms, server_ms)
    if args.hop_log is not None:
        hops.report(args.hop_log)


async def board_ids(url: str, cookie: str, origin: str) -> dict[str, int]:
    headers = {"Cookie": f"sessionid={cookie}", "Origin": origin}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "board": True}))
        ids: dict[str, int] = {}
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "board.snapshot":
                ids.update((row["subject"], row["id"]) for row in message["calls"])
                if not message.get("more", False):
                    return ids
    raise SystemExit("no board snapshot")


def match_dom(
    posted: list[tuple[int, float]], updates: list[list[float]]
) -> list[float]:
    """For each POST, the first DOM change of that call's row after it."""
    found: list[float] = []
    for i, (call_id, t0) in enumerate(posted):
        until = posted[i + 1][1] if i + 1 < len(posted) else float("inf")
        first = next(
            (at for cid, at in updates if cid == call_id and t0 <= at < until), None
        )
        if first is not None:
            found.append(first - t0)
    return found


def page_work(
    posted: list[tuple[int, float]],
    arrivals: list[list[float]],
    updates: list[list[float]],
) -> list[float]:
    """For each POST, from the delta reaching the page's socket to that call's row
    changing in the DOM: the page's own work (parse, order, one frame, paint)."""
    found: list[float] = []
    for i, (call_id, t0) in enumerate(posted):
        until = posted[i + 1][1] if i + 1 < len(posted) else float("inf")
        came = next(
            (at for cid, at in arrivals if cid == call_id and t0 <= at < until), None
        )
        if came is None:
            continue
        shown = next(
            (at for cid, at in updates if cid == call_id and came <= at < until), None
        )
        if shown is not None:
            found.append(shown - came)
    return found


def report(
    args: argparse.Namespace,
    live: int,
    client_ms: list[float],
    dom_ms: list[float],
    page_ms: list[float],
    baseline: list[float],
    first_ms: list[float],
    server_ms: list[float],
) -> None:
    db = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (WAL)"
    layer = "Redis" if os.environ.get("REDIS_URL") else "in-memory"
    print(
        f"dashboard latency bench: {live} live calls (rosters of {args.roster}), "
        f"{args.clients} websocket clients + "
        f"{'1 Chromium page' if dom_ms else 'no browser'}, {args.iterations} "
        f"notifications, {db}, {layer} channel layer"
    )
    print(f"{'':44}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = [
        (f"bare layer round trip (fan-out {args.clients})", baseline),
        ("webhook server time (Server-Timing)", server_ms),
        ("notification -> first websocket client", first_ms),
        ("notification -> websocket client (all)", client_ms),
    ]
    if dom_ms:
        rows.append(("notification -> Chromium DOM update", dom_ms))
    if page_ms:
        rows.append(("  of which the page's socket -> DOM", page_ms))
    for name, values in rows:
        p50, p99, top = quantiles(values)
        print(f"{name:44}{p50:9.2f}{p99:9.2f}{top:9.2f}")
    base50 = statistics.median(baseline)
    c50, _, _ = quantiles(client_ms)
    print(f"ratio client/bare layer: p50 x{c50 / base50:.1f}")
    if dom_ms:
        d50, d99, _ = quantiles(dom_ms)
        verdict = "met" if d50 < GOAL_P50_MS and d99 < GOAL_P99_MS else "NOT met"
        print(
            f"goal DOM p50 < {GOAL_P50_MS} ms and p99 < {GOAL_P99_MS} ms: {verdict} "
            f"(p50 x{d50 / base50:.1f} the bare layer fan-out)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--roster", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--port", type=int, default=0, help="for the server")
    parser.add_argument(
        "--hops", action="store_true", help="print each hop's time (bench/hops.py)"
    )
    args = parser.parse_args()
    args.hop_log = hops.start() if args.hops else None

    keys = Keys()
    jwks_server, openid_url = serve_jwks(keys)
    workdir = Path(tempfile.mkdtemp(prefix="callbot-dash-bench-"))
    with ExitStack() as stack:
        database_url = stack.enter_context(own_database())
        env = {
            **os.environ,
            "CALLBOT_VAR_DIR": str(workdir),
            "GRAPH_NOTIFICATION_OPENID_URL": openid_url,
            "GRAPH_CLIENT_ID": "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10",
            "GRAPH_CA_BUNDLE": "",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        if database_url:
            env["DATABASE_URL"] = database_url
        os.environ["CALLBOT_VAR_DIR"] = str(workdir)
        manage = [PYTHON, "manage.py"]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [*manage, "create_user", USER, "--role", "auditor", "--password-stdin"],
            cwd=ROOT,
            env=env,
            input=PASSWORD.encode(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = args.port or free_port()
        server = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "daphne",
                "-v",
                "0",
                "-p",
                str(port),
                "callbot.asgi:application",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_for_port(port, server)
            asyncio.run(measure(args, f"http://127.0.0.1:{port}", keys))
        finally:
            server.terminate()
            server.wait(timeout=10)
            jwks_server.shutdown()


if __name__ == "__main__":
    main()
