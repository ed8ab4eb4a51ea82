"""Webhook ingest benchmark: signed notification batches into a running Callbot.

Starts, in the same run and on this machine:
  * a JWKS server with a fresh RSA key (the stand-in for Microsoft's signing keys);
  * Callbot under daphne on the embedded default (its own SQLite under a temp dir),
    trusting that JWKS; or PostgreSQL/Redis if DATABASE_URL/REDIS_URL are set;
  * a bare daphne endpoint (an ASGI app answering 202 with no work) as the baseline.

Then posts the same stream of signed 10-notification batches to both, sequentially
(latency) and from several threads (throughput), and prints p50/p99 latency, the
webhook's own server time (its Server-Timing header) and the ratio to the baseline.
With ``--apply deferred`` (WEBHOOK_APPLY) it also waits for the stored batches to
be applied and prints the rate they were applied at.

    .venv/bin/python bench/ingest.py [--batches 400] [--batch-size 10] [--threads 4]
                                     [--processes 1] [--apply inline|deferred]
                                     [--rounds 1]

Over the parallel half it also prints the CPU per batch of the web process, of
the clients' own process, and of what runs beside the web process (its applier
process, the PostgreSQL backends of the database's connections): on a machine
whose cores are all busy, the ratio follows all of them, not the web process's
alone (bench/README.md).

With ``--rounds N`` the bare endpoint and the webhook are measured N times each,
alternated (bare, webhook, bare, webhook...), each round with batches of its own,
and the ratio is given per round and as their median: on a machine shared with
other work the load moves within a minute, and a ratio of two runs taken a few
seconds apart tells the webhook from the load better than one of a single pair.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
APP_ID = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
ISSUER = "https://api.botframework.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Keys:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        self.jwks = {"keys": [jwk]}

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": APP_ID,
            "tid": TENANT,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
        return jwt.encode(
            claims, self.key, algorithm="RS256", headers={"kid": self.kid}
        )


def serve_jwks(keys: Keys) -> tuple[ThreadingHTTPServer, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.endswith("OpenIdConfiguration"):
                body = {"issuer": ISSUER, "jwks_uri": f"{base}/v1/keys"}
            else:
                body = keys.jwks
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{base}/v1/.well-known/OpenIdConfiguration"


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def participant(i: int, muted: bool) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "info": {
            "identity": {"user": {"id": f"user-{i}", "displayName": f"Person {i}"}}
        },
        "mediaStreams": [
            {
                "mediaType": "audio",
                "direction": "sendReceive",
                "sourceId": str(i),
                "serverMuted": False,
            }
        ],
        "isMuted": muted,
        "isInLobby": False,
    }


def make_batch(n: int, size: int, calls: list[str], roster: int) -> dict[str, Any]:
    """A realistic mix: roster updates where one person toggles mute, and state echoes."""
    value = []
    for j in range(size):
        call = calls[(n * size + j) % len(calls)]
        if j % 2 == 0:
            toggled = (n + j) % roster
            data = [participant(i, muted=(i == toggled)) for i in range(roster)]
            value.append(
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call}/participants",
                    "resourceData": data,
                }
            )
        else:
            value.append(
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.call",
                        "id": call,
                        "state": "established",
                    },
                }
            )
    return {"value": value}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class ConnectionCounter:
    """The most connections open to the database of DATABASE_URL, sampled every
    50 ms from pg_stat_activity while it runs (its own connection excluded)."""

    def __init__(self) -> None:
        self.url = os.environ.get("DATABASE_URL", "")
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> ConnectionCounter:
        if self.url:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)


class Inbox:
    """Stored batches not yet applied (WEBHOOK_APPLY=deferred), read from the
    server's database: its SQLite file, or DATABASE_URL."""

    sqlite_path: Path | None = None

    @classmethod
    def pending(cls) -> int:
        query = "SELECT count(*) FROM calls_inboxbatch WHERE error = ''"
        url = os.environ.get("DATABASE_URL", "")
        if url:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(query).fetchone()
        else:
            import sqlite3

            conn = sqlite3.connect(str(cls.sqlite_path), timeout=30)
            try:
                row = conn.execute(query).fetchone()
            finally:
                conn.close()
        return int(row[0]) if row else 0


def apply_mode() -> str:
    """The server's WEBHOOK_APPLY: as set, else its default (inline with
    PostgreSQL but no Redis, deferred otherwise; callbot/settings.py)."""
    if os.environ.get("WEBHOOK_APPLY"):
        return os.environ["WEBHOOK_APPLY"]
    no_redis = os.environ.get("DATABASE_URL") and not os.environ.get("REDIS_URL")
    return "inline" if no_redis else "deferred"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (stat's 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def appliers(parents: list[int]) -> list[int]:
    """The inbox applier processes (``apply_inbox``) of the web processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) in parents and b"apply_inbox" in argv:
            found.append(int(entry.name))
    return found


def database_backends() -> list[int]:
    """The server processes of the connections open to DATABASE_URL's database
    (the web process's and its applier's; none on SQLite), for their CPU."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return []
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


def drained_after(start: float) -> float | None:
    """Seconds from ``start`` until the inbox was empty (polled every 10 ms);
    None when nothing is deferred (inline mode: applied before each answer)."""
    if apply_mode() != "deferred" or Inbox.sqlite_path is None:
        return None
    while Inbox.pending():
        time.sleep(0.01)
    return time.perf_counter() - start


def run(
    urls: list[str],
    bodies: list[bytes],
    token: str,
    threads: int,
    pids: list[int] | None = None,
    tag: str = "",
    beside: list[int] | None = None,
) -> dict[str, float]:
    """Post half the bodies one after another to the first URL (latency), the
    other half from ``threads`` clients spread over all the URLs (throughput).
    ``pids``: processes whose CPU over the parallel half (the accepting of a
    burst, before any wait for the inbox) is given as ``burst_cpu``; ``tag``
    makes the message ids unique to a round; ``beside``: processes whose CPU
    over the parallel half is given as ``beside_cpu`` (the applier, the
    database's backends)."""
    url = urls[0]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    half = len(bodies) // 2
    latencies: list[float] = []
    server_ms: list[float] = []
    with httpx.Client(timeout=30) as client:
        for i, body in enumerate(bodies[:half]):
            start = time.perf_counter()
            r = client.post(
                url,
                content=body,
                headers={**headers, "X-Microsoft-Skype-Message-ID": f"{tag}seq-{i}"},
            )
            latencies.append((time.perf_counter() - start) * 1000)
            if r.status_code != 202:
                raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")
            timing = r.headers.get("server-timing", "")
            if "dur=" in timing:
                server_ms.append(float(timing.split("dur=")[1]))

    local = threading.local()

    def post(item: tuple[int, bytes]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
        i, body = item
        r = local.client.post(
            urls[i % len(urls)],
            content=body,
            headers={**headers, "X-Microsoft-Skype-Message-ID": f"{tag}par-{i}"},
        )
        if r.status_code != 202:
            raise SystemExit(f"{url}: {r.status_code} {r.text[:200]}")

    rest = list(enumerate(bodies[half:]))
    cpu_start = cpu_seconds(pids or [])
    beside_start = cpu_seconds(beside or [])
    client_start = time.process_time()
    start = time.perf_counter()
    with ConnectionCounter() as counter, ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, rest))
    elapsed = time.perf_counter() - start
    burst_cpu = (cpu_seconds(pids or []) - cpu_start) / len(rest)
    beside_cpu = (cpu_seconds(beside or []) - beside_start) / len(rest)
    # This process's own (the clients' threads, under one interpreter lock).
    client_cpu = (time.process_time() - client_start) / len(rest)
    applied_after = drained_after(start)
    return {
        "applied_per_s": len(rest) / applied_after if applied_after else float("nan"),
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 99),
        "server_p50": statistics.median(server_ms) if server_ms else float("nan"),
        "server_p99": percentile(server_ms, 99) if server_ms else float("nan"),
        "batches_per_s": len(rest) / elapsed,
        "connections": counter.most,
        "burst_cpu": burst_cpu,
        "client_cpu": client_cpu,
        "beside_cpu": beside_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="bare and webhook measured this many times each, alternated",
    )
    parser.add_argument(
        "--calls", type=int, default=20, help="distinct calls the batches touch"
    )
    parser.add_argument(
        "--roster", type=int, default=8, help="participants per meeting roster"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="web processes of each server (one port each; clients spread over them)",
    )
    parser.add_argument(
        "--apply",
        choices=["inline", "deferred"],
        help="WEBHOOK_APPLY of the Callbot server (default: its own default, "
        "inline with DATABASE_URL but no REDIS_URL, deferred otherwise)",
    )
    args = parser.parse_args()

    keys = Keys()
    jwks_server, openid_url = serve_jwks(keys)
    workdir = Path(tempfile.mkdtemp(prefix="callbot-bench-"))
    if args.apply:
        os.environ["WEBHOOK_APPLY"] = args.apply
    env = {
        **os.environ,
        "CALLBOT_VAR_DIR": str(workdir),
        "GRAPH_NOTIFICATION_OPENID_URL": openid_url,
        "GRAPH_CLIENT_ID": APP_ID,
        "GRAPH_CA_BUNDLE": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    app_ports = [free_port() for _ in range(args.processes)]
    bare_ports = [free_port() for _ in range(args.processes)]

    def daphne(port: int, app: str) -> subprocess.Popen[bytes]:
        command = [py, "-m", "daphne", "-v", "0", "-p", str(port), app]
        return subprocess.Popen(command, cwd=ROOT, env=env)

    procs = [daphne(p, "callbot.asgi:application") for p in app_ports]
    procs += [daphne(p, "bench.bare_app:application") for p in bare_ports]
    try:
        for port, proc in zip([*app_ports, *bare_ports], procs, strict=True):
            wait_for_port(port, proc)
        calls = [str(uuid.uuid4()) for _ in range(args.calls)]
        rounds = max(1, args.rounds)
        bodies = [
            json.dumps(make_batch(n, args.batch_size, calls, args.roster)).encode()
            for n in range(args.batches * rounds)
        ]
        token = keys.token()
        app_urls = [f"http://127.0.0.1:{p}/api/calling/callback" for p in app_ports]
        bare_urls = [f"http://127.0.0.1:{p}/" for p in bare_ports]
        # Warm both (imports, JWKS fetch, connection set-up), then measure,
        # each webhook run from an empty inbox (run waits for it to drain).
        Inbox.sqlite_path = workdir / "callbot-inbox.sqlite3"
        run(app_urls, bodies[:20], token, 2 * args.processes, tag="warm-")
        run(bare_urls, bodies[:20], token, 2 * args.processes, tag="warm-")
        bare_pids = [p.pid for p in procs[len(app_ports) :]]
        web_pids = [p.pid for p in procs[: len(app_ports)]]
        applier_pids = appliers(web_pids)
        measured: list[tuple[dict[str, float], dict[str, float], float, float, float]]
        measured = []
        for r in range(rounds):
            chunk = bodies[r * args.batches : (r + 1) * args.batches]
            bare_cpu_before = cpu_seconds(bare_pids)
            bare = run(bare_urls, chunk, token, args.threads, bare_pids, f"r{r}-")
            bare_cpu = cpu_seconds(bare_pids) - bare_cpu_before
            cpu_before = cpu_seconds(web_pids), cpu_seconds(applier_pids)
            app = run(
                app_urls,
                chunk,
                token,
                args.threads,
                web_pids,
                f"r{r}-",
                beside=applier_pids + database_backends(),
            )
            cpu_after = cpu_seconds(web_pids), cpu_seconds(applier_pids)
            web_cpu, applier_cpu = (
                a - b for a, b in zip(cpu_after, cpu_before, strict=True)
            )
            app["load"] = os.getloadavg()[0]
            measured.append((bare, app, bare_cpu, web_cpu, applier_cpu))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        jwks_server.shutdown()

    db = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (WAL)"
    print(
        f"webhook ingest bench: {args.batches} batches of {args.batch_size} notifications, "
        f"{args.calls} calls, rosters of {args.roster}, {db}, "
        f"{args.processes} process(es) per server, {args.threads} clients, "
        f"WEBHOOK_APPLY={apply_mode()}"
        f"{'' if os.environ.get('WEBHOOK_APPLY') else ' (its default)'}"
        f"{f', {rounds} rounds alternated' if rounds > 1 else ''}"
    )
    ratios = []
    for r, (bare, app, bare_cpu, web_cpu, applier_cpu) in enumerate(measured):
        if rounds > 1:
            print(f"round {r + 1}:")
        report(args, bare, app, bare_cpu, web_cpu, applier_cpu, len(applier_pids))
        ratios.append(app["batches_per_s"] / bare["batches_per_s"])
    if rounds > 1:
        print(
            f"throughput ratio webhook/bare, median of {rounds} alternated rounds: "
            f"x{statistics.median(ratios):.2f} "
            f"({', '.join(f'{x:.2f}' for x in ratios)})"
        )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def report(
    args: argparse.Namespace,
    bare: dict[str, float],
    app: dict[str, float],
    bare_cpu: float,
    web_cpu: float,
    applier_cpu: float,
    appliers: int,
) -> None:
    """One round's figures."""
    print(f"{'':28}{'p50 ms':>9}{'p99 ms':>9}{'batches/s':>11}{'notif/s':>10}")
    for name, r in (("bare daphne endpoint", bare), ("callbot webhook", app)):
        print(
            f"{name:28}{r['p50']:9.2f}{r['p99']:9.2f}{r['batches_per_s']:11.0f}"
            f"{r['batches_per_s'] * args.batch_size:10.0f}"
        )
    print(
        f"webhook server time (Server-Timing): p50 {app['server_p50']:.2f} ms, p99 {app['server_p99']:.2f} ms"
    )
    print(
        f"ratio webhook/bare: latency p50 x{app['p50'] / bare['p50']:.2f}, "
        f"throughput x{app['batches_per_s'] / bare['batches_per_s']:.2f}"
    )
    if app["applied_per_s"] == app["applied_per_s"]:  # not NaN: deferred
        print(
            f"applied (deferred): the parallel half's batches all applied at "
            f"{app['applied_per_s']:.0f} batches/s from its first post "
            f"(x{app['applied_per_s'] / bare['batches_per_s']:.2f} of bare)"
        )
    # The measured run posts every body (half one by one, half in parallel).
    print(
        f"CPU per batch: web process(es) {web_cpu / args.batches * 1000:.1f} ms, "
        f"applier process(es) {applier_cpu / args.batches * 1000:.1f} ms "
        f"({appliers} applier(s)); bare daphne endpoint "
        f"{bare_cpu / args.batches * 1000:.1f} ms (the floor: daphne's own HTTP "
        f"handling); load average {app['load']:.2f}"
    )
    print(
        f"CPU per batch while the parallel half was accepted: web process(es) "
        f"{app['burst_cpu'] * 1000:.1f} ms, bare {bare['burst_cpu'] * 1000:.1f} ms; "
        f"the clients' own process {app['client_cpu'] * 1000:.1f} ms against "
        f"bare {bare['client_cpu'] * 1000:.1f} ms; beside the web process, its "
        f"applier process and database backends {app['beside_cpu'] * 1000:.1f} ms"
    )
    if os.environ.get("DATABASE_URL"):
        print(
            f"open PostgreSQL connections under load ({args.threads} clients): "
            f"at most {app['connections']:.0f}"
        )


if __name__ == "__main__":
    main()
