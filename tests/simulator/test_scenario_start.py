"""A scenario given on the emulator's command line starts once the bot's webhook
takes connections: started beside a bot that is still starting (``manage.py
serve``, compose), its first calls would otherwise ring out unheard."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callbot.simulator.__main__ import wait_for_webhook
from tests.support.emulator import free_port, wait_until


def test_waits_until_the_webhook_listens_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/calling/callback"

    async def scenario() -> tuple[bool, bool]:
        waiting = asyncio.create_task(wait_for_webhook(url, every=0.02))
        await asyncio.sleep(0.3)
        early = waiting.done()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        async with server:
            await asyncio.wait_for(waiting, timeout=5)
        return early, waiting.done()

    with caplog.at_level(logging.INFO, logger="callbot.simulator"):
        early, done = asyncio.run(scenario())

    assert (early, done) == (False, True)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"scenario waits for the bot's webhook at {url}",
        "the bot's webhook is listening: scenario starts",
    ]


def test_a_listening_webhook_is_not_waited_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with caplog.at_level(logging.INFO, logger="callbot.simulator"):
            asyncio.run(wait_for_webhook(f"http://127.0.0.1:{port}/x"))

    assert caplog.records == []


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[tuple[httpx.Client, int]]:
    port, webhook_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callbot.simulator",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path),
            "--bot-webhook",
            f"http://127.0.0.1:{webhook_port}/api/calling/callback",
            "--scenario",
            "mixed",
            "--log-level",
            "WARNING",
        ]
    )
    try:
        wait_until(lambda: (tmp_path / "ca.pem").exists(), timeout=30)
        client = httpx.Client(
            base_url=f"https://127.0.0.1:{port}/_emulator",
            verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")),
            timeout=5,
        )

        def answers() -> bool:
            try:
                return client.get("/scenarios").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout=30, interval=0.1)
        yield client, webhook_port
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.e2e
def test_the_command_lines_scenario_starts_when_the_bot_listens(
    emulator_process: tuple[httpx.Client, int],
) -> None:
    client, webhook_port = emulator_process

    def running() -> list[str]:
        runs = client.get("/scenarios").json()["value"]
        return [r["name"] for r in runs if r["status"] == "running"]

    time.sleep(1.0)  # the emulator has listened a while: nobody to call yet
    assert running() == []
    with socket.socket() as bot:
        bot.bind(("127.0.0.1", webhook_port))
        bot.listen()
        assert wait_until(running, timeout=10, interval=0.05) == ["mixed"]
