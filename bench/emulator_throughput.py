"""Emulator throughput: notifications per second delivered into a bare webhook.

Starts, on this machine and in this run:
  * a bare receiver (bench/bare_app.py under daphne: reads the body, answers 202);
  * the emulator (``python -m callbot.simulator``, daphne over TLS) pointed at it.
Then plays the bot over Graph (token, answer, subscribeToTone) for CALLS incoming
calls and has each caller press TONES keys through the control API: CALLS x TONES
tone notifications, each a separate ``commsNotification`` the emulator must sign,
batch and POST in order per call. Prints notifications/s (acknowledged with 2xx),
POSTs/s and the mean batch size.

    .venv/bin/python bench/emulator_throughput.py [--calls 20] [--tones 1000] [--batch-max 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tones", type=int, default=1000)
    parser.add_argument(
        "--batch-max", type=int, default=50, help="notifications per POST at most"
    )
    args = parser.parse_args()
    total = args.calls * args.tones

    state = Path(tempfile.mkdtemp(prefix="emulator-bench-"))
    receiver_port, emulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EMULATOR_BATCH_MAX": str(args.batch_max),
    }
    receiver = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(receiver_port),
            "bench.bare_app:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    webhook = f"http://127.0.0.1:{receiver_port}/api/calling/callback"
    emulator = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "callbot.simulator",
            "--port",
            str(emulator_port),
            "--state-dir",
            str(state),
            "--bot-webhook",
            webhook,
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_port(receiver_port)
        wait_port(emulator_port)
        base = f"https://127.0.0.1:{emulator_port}"
        verify = ssl.create_default_context(cafile=str(state / "ca.pem"))
        control = httpx.Client(base_url=f"{base}/_emulator", verify=verify, timeout=30)
        token = httpx.post(
            f"{base}/c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a/oauth2/v2.0/token",
            verify=verify,
            data={
                "grant_type": "client_credentials",
                "client_id": "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10",
                "client_secret": "emulator-client-secret",
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        graph = httpx.Client(
            base_url=f"{base}/v1.0",
            verify=verify,
            timeout=30,
            headers={"Authorization": f"Bearer {token}"},
        )

        calls = []
        for _ in range(args.calls):
            call_id = control.post(
                "/calls/incoming", json={"from": {"user": {}}}
            ).json()["callId"]
            graph.post(
                f"/communications/calls/{call_id}/answer",
                json={
                    "callbackUri": webhook,
                    "acceptedModalities": ["audio"],
                    "mediaConfig": {
                        "@odata.type": "#microsoft.graph.serviceHostedMediaConfig"
                    },
                },
            )
            calls.append(call_id)
        while any(
            c["state"] != "established" for c in control.get("/calls").json()["value"]
        ):
            time.sleep(0.05)
        for call_id in calls:
            graph.post(f"/communications/calls/{call_id}/subscribeToTone", json={})
        while not control.get("/stats").json()["notifications"]["idle"]:
            time.sleep(0.05)
        before = control.get("/stats").json()["notifications"]

        started = time.perf_counter()
        tones = ["tone1", "tone2", "tone3", "pound"] * (args.tones // 4)
        for call_id in calls:
            control.post(f"/calls/{call_id}/tones", json={"tones": tones})
        while True:
            now = control.get("/stats").json()["notifications"]
            if now["delivered"] + now["failed"] - before["delivered"] - before[
                "failed"
            ] >= len(tones) * len(calls):
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        delivered = now["delivered"] - before["delivered"]
        posts = now["posts"] - before["posts"]
        print(
            f"emulator -> bare receiver: {delivered} of {total} tone notifications in {elapsed:.2f} s"
        )
        print(
            f"  {delivered / elapsed:,.0f} notifications/s, {posts / elapsed:,.0f} POSTs/s, "
            f"mean batch {delivered / max(posts, 1):.1f}, failed {now['failed'] - before['failed']}"
        )
    finally:
        emulator.terminate()
        receiver.terminate()
        emulator.wait(10)
        receiver.wait(10)


if __name__ == "__main__":
    main()
