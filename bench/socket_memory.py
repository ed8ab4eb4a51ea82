"""Where a live socket's memory goes: tracemalloc in daphne, around N sockets.

Starts Callbot (or, with --bare, ``bench/bare_ws.py``) under daphne with
tracemalloc on (--frames deep), warms it with 50 sockets opened and closed, takes
a snapshot, opens --sockets sockets each subscribed to its own live call (bare:
each sent a ping), takes another, and prints the traced growth per socket by file
and by line (--top of each), and the RSS growth per socket under tracing (higher
than without it: the traces are memory too). The embedded default, or
PostgreSQL/Redis when DATABASE_URL / REDIS_URL are set, as bench/board_scale.py.

    .venv/bin/python bench/socket_memory.py [--sockets 200] [--bare] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
WARM_SOCKETS = 50


def __getattr__(name: str) -> Any:
    """``application`` for daphne: the traced server's app, a snapshot dumped to
    ``SOCKET_MEMORY_OUT.<n>`` at each SIGUSR1."""
    if name != "application":
        raise AttributeError(name)
    tracemalloc.start(int(os.environ.get("SOCKET_MEMORY_FRAMES", "12")))
    dumped = [0]

    def dump(signum: int, frame: Any) -> None:
        gc.collect()
        dumped[0] += 1
        out = f"{os.environ['SOCKET_MEMORY_OUT']}.{dumped[0]}"
        tracemalloc.take_snapshot().dump(out)
        Path(f"{out}.done").touch()

    signal.signal(signal.SIGUSR1, dump)
    if os.environ.get("SOCKET_MEMORY_BARE"):
        from bench.bare_ws import application
    else:
        from callbot.asgi import application
    return application


def _snapshot(proc: subprocess.Popen[bytes], out: str, n: int) -> Any:
    """The server's snapshot, waited for here (the sockets are idle meanwhile)."""
    proc.send_signal(signal.SIGUSR1)
    done = Path(f"{out}.{n}.done")
    while not done.exists():
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(f"{out}.{n}")


def _start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "daphne",
            "-v",
            "0",
            "-p",
            str(port),
            "bench.socket_memory:application",
        ],
        cwd=ROOT,
        env=env,
    )
    # Imported here: the traced server imports this module too, and needs none of it.
    from bench.ingest import wait_for_port

    wait_for_port(port, server, timeout=300)  # a traced start under load is slow
    return server


async def measure(args: argparse.Namespace, env: dict[str, str], out: str) -> None:
    from bench.board_scale import hold_sockets, manage, populate, rss_kib
    from bench.dashboard_latency import sign_in
    from bench.ingest import free_port

    port = free_port()
    server_env = {**env, "SOCKET_MEMORY_OUT": out}
    if args.bare:
        server_env["SOCKET_MEMORY_BARE"] = "1"
    server = _start(port, server_env)
    try:
        base = f"http://127.0.0.1:{port}"
        if args.bare:
            url, headers, answer = f"ws://127.0.0.1:{port}/", {}, "pong"
            messages: list[dict[str, Any]] = [{"type": "ping"}] * args.sockets
        else:
            url, answer = f"ws://127.0.0.1:{port}/ws/live/", "call.snapshot"
            headers = {"Cookie": f"sessionid={sign_in(base)}", "Origin": base}
            populate(env, args.sockets, 0)
            ids = json.loads(
                manage(
                    env,
                    "import json\nfrom callbot.calls.models import Call\n"
                    "print(json.dumps(list(Call.objects.values_list('pk', flat=True)"
                    f"[:{args.sockets}])))\n",
                )
            )
            messages = [{"type": "subscribe", "call": i} for i in ids]
        warm, _ = await hold_sockets(url, headers, messages[:1] * WARM_SOCKETS, answer)
        for ws in warm:
            await ws.close()
        await asyncio.sleep(2)
        before = _snapshot(server, out, 1)
        rss = rss_kib(server.pid)  # after the snapshot's own memory
        sockets, _ = await hold_sockets(url, headers, messages, answer)
        await asyncio.sleep(2)
        rss = rss_kib(server.pid) - rss
        after = _snapshot(server, out, 2)
        for ws in sockets:
            await ws.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(args, before, after, rss)


def report(args: argparse.Namespace, before: Any, after: Any, rss: float) -> None:
    n = args.sockets
    by_file = after.compare_to(before, "filename")
    total = sum(s.size_diff for s in by_file)
    print(
        f"{'bare endpoint' if args.bare else 'Callbot'}, {n} sockets: traced "
        f"{total / n / 1024:.1f} KiB a socket; RSS under tracing {rss / n:.1f} KiB"
    )
    for title, stats in (
        ("by file", by_file),
        ("by line", after.compare_to(before, "lineno")),
    ):
        print(f"{title} (bytes a socket, objects a socket):")
        for stat in stats[: args.top]:
            where = stat.traceback[0]
            name = where.filename.split("site-packages/")[-1].replace(
                str(ROOT) + "/", ""
            )
            line = f":{where.lineno}" if title == "by line" else ""
            print(
                f"  {stat.size_diff / n:8.0f} {stat.count_diff / n:6.1f}  {name}{line}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()

    from bench.board_scale import PYTHON as python
    from bench.dashboard_latency import PASSWORD, USER
    from bench.emulator_to_callbot import own_database

    workdir = Path(tempfile.mkdtemp(prefix="callbot-socket-memory-"))
    with ExitStack() as stack:
        database_url = stack.enter_context(own_database())
        env = {
            **os.environ,
            "CALLBOT_VAR_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "SOCKET_MEMORY_FRAMES": str(args.frames),
        }
        if database_url:
            env["DATABASE_URL"] = database_url
        if not args.bare:
            subprocess.run(
                [python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
            )
            subprocess.run(
                [
                    python,
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
        asyncio.run(measure(args, env, str(workdir / "snapshot")))


if __name__ == "__main__":
    main()
