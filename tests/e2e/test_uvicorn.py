"""The production web server (uvicorn, as docker/compose.yml runs it, forwarded
headers on) serves the pages, the sign-in and the live websocket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.emulator import free_port, wait_until

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def uvicorn_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var = tmp_path_factory.mktemp("uvicorn")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPH_", "DJANGO_", "CELERY_"))
        and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="callbot.settings",
        CALLBOT_VAR_DIR=str(var),
        LOG_LEVEL="WARNING",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "create_user", "bob", "--role", "supervisor", "--password-stdin"],
        cwd=ROOT,
        env=env,
        input=b"bob-uvicorn-pw",
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "callbot.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--proxy-headers",
            "--forwarded-allow-ips",
            "*",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(var / "uvicorn.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=60)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_sign_in_and_the_live_socket_work_under_uvicorn(uvicorn_url: str) -> None:
    with httpx.Client(base_url=uvicorn_url, timeout=10) as http:
        page = http.get("/accounts/login/")
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None
        signed_in = http.post(
            "/accounts/login/",
            data={
                "username": "bob",
                "password": "bob-uvicorn-pw",
                "csrfmiddlewaretoken": token.group(1),
            },
        )
        assert signed_in.status_code == 302
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())

    async def hello() -> dict[str, object]:
        async with websockets.connect(
            uvicorn_url.replace("http", "ws") + "/ws/live/",
            additional_headers={"Cookie": cookie},
            origin=uvicorn_url,  # type: ignore[arg-type]
        ) as socket:
            first: dict[str, object] = json.loads(await socket.recv())
            return first

    first = asyncio.run(hello())
    assert first["type"] == "hello"
    assert first["user"] == "bob"
