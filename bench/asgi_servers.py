"""Which production ASGI server for Callbot's web tier: daphne or uvicorn, measured.

For each server, in the same run and on this machine, one process serving
``callbot.asgi:application`` on the embedded default (its own SQLite under a temp
dir; ``--database-url`` for PostgreSQL), with a JWKS stand-in for Microsoft's
keys, then:

  * the webhook: signed 10-notification batches (bench/ingest.py's mix), batches/s
    from several threads;
  * a page: the sign-in page (a template render through every middleware), req/s;
  * the baseline: a bare ASGI app answering 202 (bench/bare_app.py) under the same
    server, req/s: what the server itself costs, so other load on the machine
    shows in it and cancels out of the ratios.

Servers run one after the other, in alternating rounds (daphne, uvicorn,
daphne, uvicorn, ...); each round's figures are printed as they come, then the
best of the rounds.

    .venv/bin/python bench/asgi_servers.py [--requests 600] [--threads 8]
        [--database-url postgres://postgres@127.0.0.1:5432/cb_asgi_bench]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import APP_ID, Keys, free_port, make_batch, serve_jwks

ROOT = Path(__file__).resolve().parent.parent


def command(server: str, app: str, port: int) -> list[str]:
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def rate(
    requests: list[tuple[str, str, bytes, dict[str, str]]], threads: int, ok: int
) -> float:
    """Requests a second from ``threads`` threads, each with its own connection."""
    local = threading.local()

    def send(item: tuple[str, str, bytes, dict[str, str]]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
        method, url, body, headers = item
        response = local.client.request(method, url, content=body, headers=headers)
        if response.status_code != ok:
            raise SystemExit(f"{url}: {response.status_code} {response.text[:200]}")

    for item in requests[: threads * 2]:  # warm every connection and cache
        send(item)
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, requests))
    return len(requests) / (time.perf_counter() - start)


def measure(
    server: str, env: dict[str, str], token: str, n: int, threads: int, round_: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    for app, label in (
        ("callbot.asgi:application", "app"),
        ("bench.bare_app:application", "bare"),
    ):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            command(server, app, port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"{base}/healthz", proc)
            if label == "bare":
                reqs = [("POST", f"{base}/", b"{}", {})] * n
                figures["bare req/s"] = rate(reqs, threads, 202)
                continue
            calls = [f"bench-{round_}-{server}-{i:04d}" for i in range(20)]
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            }
            webhook = [
                (
                    "POST",
                    f"{base}/api/calling/callback",
                    json.dumps(make_batch(i, 10, calls, 8)).encode(),
                    {
                        **headers,
                        "X-Microsoft-Skype-Message-ID": f"{server}-{round_}-{i}",
                    },
                )
                for i in range(n)
            ]
            figures["webhook batches/s"] = rate(webhook, threads, 202)
            page = [("GET", f"{base}/accounts/login/", b"", {})] * n
            figures["page req/s"] = rate(page, threads, 200)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL database to use (migrated here) instead of SQLite",
    )
    args = parser.parse_args()

    keys = Keys()
    jwks_server, openid_url = serve_jwks(keys)
    workdir = Path(tempfile.mkdtemp(prefix="callbot-asgi-bench-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "GRAPH_TENANT_ID"}
    }
    env.update(
        CALLBOT_VAR_DIR=str(workdir),
        GRAPH_NOTIFICATION_OPENID_URL=openid_url,
        GRAPH_CLIENT_ID=APP_ID,
        GRAPH_CA_BUNDLE="",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="callbot.settings",
    )
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        env.setdefault("SECRET_KEY", "asgi-bench-" + "x" * 40)
    print(f"database: {'PostgreSQL' if args.database_url else 'SQLite (embedded)'}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    print(f"load before: {os.getloadavg()}")
    best: dict[str, dict[str, float]] = {}
    for round_ in range(args.rounds):
        for server in ("daphne", "uvicorn"):
            got = measure(
                server, env, keys.token(), args.requests, args.threads, round_
            )
            print(
                f"round {round_ + 1} {server:8} "
                + "  ".join(f"{k} {v:.1f}" for k, v in got.items())
                + f"  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            got = dict(got)
            mine = best.setdefault(server, got)
            for key, value in got.items():
                mine[key] = max(mine[key], value)
    jwks_server.shutdown()
    print(f"load after: {os.getloadavg()}")
    print(
        f"{args.requests} requests a measure, {args.threads} threads; best of {args.rounds}"
    )
    print(
        f"{'server':10} {'webhook b/s':>12} {'page req/s':>11} {'bare req/s':>11} {'webhook/bare':>13}"
    )
    for server, f in best.items():
        print(
            f"{server:10} {f['webhook batches/s']:12.1f} {f['page req/s']:11.1f} "
            f"{f['bare req/s']:11.1f} {f['webhook batches/s'] / f['bare req/s']:13.3f}"
        )


if __name__ == "__main__":
    main()
