"""Run the Teams emulator and a recording webhook on real sockets, for tests.

``start_emulator`` serves ``callbot.simulator`` with uvicorn over TLS (certificate from
the emulator's own CA) in a background thread; ``start_webhook`` serves a small bot
webhook over plain HTTP that validates each notification's JWT against the emulator's
JWKS with PyJWT and records what arrived. Both are plain objects with ``stop()``, so
the simulator tests and later end-to-end tests can build fixtures from them.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callbot.simulator.app import create_app
from callbot.simulator.config import EmulatorConfig
from callbot.simulator.emulator import Emulator
from callbot.simulator.tls import ensure_certificates

WEBHOOK_PATH = "/api/calling/callback"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class _ServerThread:
    """A uvicorn server in a daemon thread."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        wait_until(
            lambda: self.server.started or not self.thread.is_alive(), timeout=15
        )
        if not self.server.started:
            raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class RunningEmulator:
    """An emulator served on a real socket, plus helpers to drive it."""

    url: str
    ca_path: Path
    emulator: Emulator
    config: EmulatorConfig
    _server: _ServerThread
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.url, verify=self.ssl_context(), timeout=10
        )

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the emulator's CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.config.bot.tenant_id}"

    def http(self) -> httpx.Client:
        """A client that trusts the emulator's CA (no auth header)."""
        return self._client

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call the control API; returns the JSON body, raising on a non-2xx answer."""
        response = self._client.request(method, f"/_emulator{path}", json=json)
        response.raise_for_status()
        return response.json()

    def token(self) -> str:
        """An access token from the emulator's token endpoint (no msal)."""
        bot = self.config.bot
        response = self._client.post(
            f"/{bot.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": bot.client_id,
                "client_secret": bot.client_secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def graph(self) -> httpx.Client:
        """A client for ``/v1.0`` with a valid bearer token."""
        return httpx.Client(
            base_url=f"{self.url}/v1.0",
            verify=self.ssl_context(),
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=10,
        )

    def reset(self, webhook: str | None = None) -> None:
        """Back to a clean emulator (and the given bot webhook)."""
        self.control("POST", "/reset")
        if webhook:
            self.control("PATCH", "/config", {"botWebhook": webhook})

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no notification is queued, in flight or awaiting re-delivery."""
        wait_until(
            lambda: self.control("GET", "/stats")["notifications"]["idle"], timeout
        )

    def stop(self) -> None:
        self._client.close()
        self._server.stop()


def start_emulator(
    state_dir: Path, config: EmulatorConfig | None = None
) -> RunningEmulator:
    """Serve a fresh emulator over TLS on a free port; ``config`` fields are kept
    except ``host``, ``port`` and ``state_dir``."""
    config = config or EmulatorConfig()
    config.host = "127.0.0.1"
    config.port = free_port()
    config.state_dir = state_dir
    files = ensure_certificates(state_dir)
    app = create_app(config)
    server = _ServerThread(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            ssl_certfile=str(files.server_cert),
            ssl_keyfile=str(files.server_key),
            log_level="warning",
            lifespan="on",
        )
    )
    server.start()
    return RunningEmulator(
        url=f"https://{config.host}:{config.port}",
        ca_path=files.ca_cert,
        emulator=app.state.emulator,
        config=config,
        _server=server,
    )


@dataclass
class Delivery:
    """One notification POST as the webhook saw it."""

    message_id: str
    chain_id: str
    client_request_id: str
    valid: bool
    error: str
    notifications: list[dict[str, Any]]
    claims: dict[str, Any]


class RecordingWebhook:
    """A bot webhook that checks each POST's JWT and records what came in.

    ``respond_with`` holds statuses to answer with next (then 202 as usual), to
    exercise the emulator's retries.
    """

    def __init__(self, emulator_url: str, ca_path: Path, app_id: str) -> None:
        self.deliveries: list[Delivery] = []
        self.respond_with: list[int] = []
        self._lock = threading.Lock()
        context = ssl.create_default_context(cafile=str(ca_path))
        self._jwks = jwt.PyJWKClient(
            f"{emulator_url}/v1/keys", cache_keys=False, ssl_context=context
        )
        self._app_id = app_id
        self.url = ""
        self._server: _ServerThread | None = None

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("authorization", "")
        valid, error, claims = False, "", {}
        try:
            token = header.removeprefix("Bearer ")
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._app_id,
                issuer="https://api.botframework.com",
                options={"require": ["exp", "nbf", "iat", "tid"]},
            )
            valid = True
        except (jwt.PyJWTError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        payload = json.loads(body) if body else {}
        with self._lock:
            self.deliveries.append(
                Delivery(
                    message_id=request.headers.get("x-microsoft-skype-message-id", ""),
                    chain_id=request.headers.get("x-microsoft-skype-chain-id", ""),
                    client_request_id=request.headers.get("client-request-id", ""),
                    valid=valid,
                    error=error,
                    notifications=payload.get("value", []),
                    claims=claims,
                )
            )
            status = self.respond_with.pop(0) if self.respond_with else None
        if not valid:
            return JSONResponse({"error": "invalid token"}, status_code=401)
        return Response(status_code=status or 202)

    def start(self) -> RecordingWebhook:
        port = free_port()
        app = Starlette(routes=[Route(WEBHOOK_PATH, self._receive, methods=["POST"])])
        self._server = _ServerThread(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
            )
        )
        self._server.start()
        self.url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def clear(self) -> None:
        with self._lock:
            self.deliveries.clear()
            self.respond_with.clear()

    # --- reading what arrived ---------------------------------------------------------
    def valid_deliveries(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.valid]

    def notifications(self, call_id: str | None = None) -> list[dict[str, Any]]:
        """Validly signed notifications in arrival order, optionally for one call."""
        found = []
        for delivery in self.valid_deliveries():
            for item in delivery.notifications:
                if call_id is None or f"/calls/{call_id}" in item.get(
                    "resourceUrl", ""
                ):
                    found.append(item)
        return found

    def call_states(self, call_id: str) -> list[str]:
        """The ``changeType``/``state`` sequence of a call's own notifications."""
        states = []
        for item in self.notifications(call_id):
            if item["resourceUrl"].endswith(call_id):
                data = item.get("resourceData") or {}
                states.append(f"{item['changeType']}:{data.get('state', '')}")
        return states

    def wait_for(
        self,
        predicate: Callable[[list[dict[str, Any]]], Any],
        call_id: str | None = None,
        timeout: float = 5.0,
    ) -> Any:
        """Wait until ``predicate(notifications)`` is truthy; returns its value."""
        return wait_until(lambda: predicate(self.notifications(call_id)), timeout)


def start_webhook(emulator: RunningEmulator) -> RecordingWebhook:
    return RecordingWebhook(
        emulator.url, emulator.ca_path, emulator.config.bot.client_id
    ).start()


def iter_tones(notifications: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in notifications:
        data = item.get("resourceData")
        if isinstance(data, dict) and data.get("toneInfo"):
            yield data["toneInfo"]
