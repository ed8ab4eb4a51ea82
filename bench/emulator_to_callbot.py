"""Emulator into Callbot: notifications/s applied, against a bare receiver.

Starts, on this machine and in this run:
  * the emulator (``python -m callbot.simulator``, daphne over TLS);
  * a bare receiver (bench/bare_app.py under daphne: reads the body, answers 202);
  * Callbot under daphne, with the real webhook, on a SQLite file database under a
    temp dir after ``migrate`` (or PostgreSQL/Redis when DATABASE_URL/REDIS_URL are
    set), trusting the emulator's CA and JWKS exactly as ``make run`` does. Call
    policies are removed, so the bot answers nothing by itself and the figure is
    the webhook's: verify the JWT, parse, one transaction, publish.

The load is the same for both receivers, played over Graph and the control API:
CALLS incoming calls, answered with the receiver as ``callbackUri``, tones
subscribed, then every caller presses TONES keys at once. Each key press is one
call notification the emulator must sign, batch (per callback URL, in order per
call) and POST; Callbot stores each as a CallEvent and applies the tone.

Prints, for each receiver: notifications/s acknowledged, POSTs/s and mean batch
size; for Callbot also notifications/s applied, counted as CallEvent rows in the
database over the same interval; and the ratio of the two.

    .venv/bin/python bench/emulator_to_callbot.py [--calls 20] [--tones 500]
        [--batch-max 50] [--in-flight 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
CLIENT_ID = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
SECRET = "emulator-client-secret"  # noqa: S105 (the emulator's public test value)
WEBHOOK_PATH = "/api/calling/callback"
# One daphne process per receiver, no access log.
DAPHNE = [PYTHON, "-m", "daphne", "-v", "0", "-b", "127.0.0.1"]
SERVICE_MEDIA = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Figures:
    notifications: int
    posts: int
    seconds: float
    applied: int | None = None

    def line(self, name: str) -> str:
        text = (
            f"{name:<22} {self.notifications / self.seconds:>8,.0f} notifications/s "
            f"acknowledged, {self.posts / self.seconds:>5,.0f} POSTs/s, "
            f"mean batch {self.notifications / max(self.posts, 1):.1f}"
        )
        if self.applied is not None:
            text += f"; {self.applied / self.seconds:,.0f} applied/s (CallEvent rows)"
        return text


class Emulator:
    """Drives the running emulator: the control API, and Graph as the bot."""

    def __init__(self, base: str, ca: Path) -> None:
        verify = ssl.create_default_context(cafile=str(ca))
        self.control = httpx.Client(
            base_url=f"{base}/_emulator", verify=verify, timeout=30
        )
        token = httpx.post(
            f"{base}/{TENANT}/oauth2/v2.0/token",
            verify=verify,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        self.graph = httpx.Client(
            base_url=f"{base}/v1.0",
            verify=verify,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )

    def stats(self) -> dict[str, Any]:
        figures: dict[str, Any] = self.control.get("/stats").json()["notifications"]
        return figures

    def idle(self) -> bool:
        return bool(self.stats()["idle"])

    def prepare(self, webhook: str, calls: int) -> list[str]:
        """CALLS answered calls listening for tones, reporting to ``webhook``."""
        self.control.post("/reset").raise_for_status()
        self.control.patch("/config", json={"botWebhook": webhook}).raise_for_status()
        ids = []
        for _ in range(calls):
            call_id = self.control.post(
                "/calls/incoming", json={"from": {"user": {}}}
            ).json()["callId"]
            self.graph.post(
                f"/communications/calls/{call_id}/answer",
                json={
                    "callbackUri": webhook,
                    "acceptedModalities": ["audio"],
                    "mediaConfig": SERVICE_MEDIA,
                },
            ).raise_for_status()
            ids.append(call_id)
        wait_for(
            "the calls to be established",
            lambda: all(
                c["state"] == "established"
                for c in self.control.get("/calls").json()["value"]
            ),
        )
        for call_id in ids:
            self.graph.post(
                f"/communications/calls/{call_id}/subscribeToTone", json={}
            ).raise_for_status()
        wait_for("the set-up notifications", self.idle)
        return ids

    def press(
        self, calls: list[str], tones: int, applied: Callable[[], int] | None = None
    ) -> Figures:
        """Every caller presses ``tones`` keys; wait until all are acknowledged
        (and, with ``applied``, stored)."""
        keys = ["tone1", "tone2", "tone3", "pound"] * (tones // 4)
        total = len(keys) * len(calls)
        before = self.stats()
        stored_before = applied() if applied else 0
        started = time.perf_counter()
        for call_id in calls:
            self.control.post(
                f"/calls/{call_id}/tones", json={"tones": keys}
            ).raise_for_status()

        def done() -> bool:
            now = self.stats()
            settled = now["delivered"] + now["failed"]
            if settled - before["delivered"] - before["failed"] < total:
                return False
            return applied is None or applied() - stored_before >= total

        wait_for("the tone notifications", done, timeout=600)
        elapsed = time.perf_counter() - started
        after = self.stats()
        if after["failed"] != before["failed"]:
            raise SystemExit(f"{after['failed'] - before['failed']} deliveries failed")
        return Figures(
            notifications=after["delivered"] - before["delivered"],
            posts=after["posts"] - before["posts"],
            seconds=elapsed,
            applied=(applied() - stored_before) if applied else None,
        )


def callevent_counter(env: dict[str, str]) -> Callable[[], int]:
    """Counts CallEvent rows in the database Callbot writes to (same settings)."""
    os.environ.update(
        {k: v for k, v in env.items() if k in ("CALLBOT_VAR_DIR", "DATABASE_URL")}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from callbot.calls.models import CallEvent

    def count() -> int:
        value = CallEvent.objects.count()
        connection.close()  # a fresh snapshot each time (SQLite WAL readers)
        return value

    return count


@contextmanager
def own_database() -> Iterator[str | None]:
    """With DATABASE_URL set, a database of the bench's own on that server (created
    empty, dropped afterwards), so the bench neither reads nor changes anyone's
    rows; None on the embedded default (the SQLite file lives in the temp dir)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield None
        return
    import psycopg

    name = f"callbot_bench_{os.getpid()}"
    server = urlsplit(url)._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tones", type=int, default=500, help="key presses per call")
    parser.add_argument(
        "--batch-max", type=int, default=50, help="notifications per POST at most"
    )
    parser.add_argument(
        "--in-flight", type=int, default=4, help="POSTs in flight per callback URL"
    )
    args = parser.parse_args()
    # Stopped from outside (timeout, kill): still stop the servers and drop the
    # database, which only the ``finally`` blocks do.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with own_database() as database_url:
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="emulator-to-callbot-"))
    state = workdir / "emulator"
    ports = {name: free_port() for name in ("emulator", "bare", "callbot")}
    emulator_url = f"https://127.0.0.1:{ports['emulator']}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CALLBOT_VAR_DIR": str(workdir),
        "EMULATOR_URL": emulator_url,
        "GRAPH_CA_BUNDLE": str(state / "ca.pem"),
        "LOG_LEVEL": "WARNING",
        "EMULATOR_BATCH_MAX": str(args.batch_max),
        "EMULATOR_MAX_IN_FLIGHT": str(args.in_flight),
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
            "shell",
            "-v0",
            "-c",
            "from callbot.ivr.models import CallPolicy; CallPolicy.objects.all().delete()",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    children = [
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "callbot.simulator",
                "--port",
                str(ports["emulator"]),
                "--state-dir",
                str(state),
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
        ),
        subprocess.Popen(
            [*DAPHNE, "-p", str(ports["bare"]), "bench.bare_app:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [*DAPHNE, "-p", str(ports["callbot"]), "callbot.asgi:application"],
            cwd=ROOT,
            env=env,
        ),
    ]
    try:
        for port in ports.values():
            wait_for(f"port {port}", partial(listening, port))
        emulator = Emulator(emulator_url, state / "ca.pem")
        applied = callevent_counter(env)
        db = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (WAL)"
        total = args.calls * (args.tones // 4 * 4)
        print(
            f"{args.calls} calls x {args.tones // 4 * 4} key presses = {total} "
            f"notifications; batch max {args.batch_max}, {args.in_flight} POSTs in "
            f"flight; Callbot on {db}, one daphne process"
        )

        bare_hook = f"http://127.0.0.1:{ports['bare']}{WEBHOOK_PATH}"
        bare = emulator.press(emulator.prepare(bare_hook, args.calls), args.tones)
        print(bare.line("bare receiver"))

        callbot_hook = f"http://127.0.0.1:{ports['callbot']}{WEBHOOK_PATH}"
        calls = emulator.prepare(callbot_hook, args.calls)
        wait_for(
            "the set-up to be stored", lambda: applied() >= args.calls * 4, timeout=30
        )
        callbot = emulator.press(calls, args.tones, applied)
        print(callbot.line("Callbot webhook"))
        rate = (callbot.applied or 0) / callbot.seconds
        print(
            f"ratio Callbot/bare: {rate / (bare.notifications / bare.seconds):.2f}; "
            f"target 1,000/s: {'met' if rate >= 1000 else 'not met'}"
        )
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
