"""One HTTP request driven through an ASGI application in the test's process, as
daphne would hand it over: the scope, the body's messages, and what was sent back."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    thread: str  # the thread the response's start was sent from

    def json(self) -> Any:
        return json.loads(self.body)


def asgi_request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    auth: str | None = None,
    chunk: int | None = None,
    app: Callable[..., Any] | None = None,
) -> Answer:
    """``method path`` through ``app`` (by default ``callbot.asgi.application``)
    with a JSON content type and ``Authorization: auth`` when given. The body is
    sent whole with its Content-Length, or, with ``chunk``, in pieces of that size
    and no Content-Length, as a chunked request arrives. The client stays
    connected until answered."""
    if app is None:
        from callbot import asgi

        app = asgi.application
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if auth is not None:
        headers.append((b"authorization", auth.encode()))
    if chunk is None:
        headers.append((b"content-length", str(len(body)).encode()))
        messages = [{"type": "http.request", "body": body, "more_body": False}]
    else:
        messages = [
            {"type": "http.request", "body": body[i : i + chunk], "more_body": True}
            for i in range(0, len(body), chunk)
        ] + [{"type": "http.request", "body": b"", "more_body": False}]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    threads: list[str] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # never set: the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            threads.append(threading.current_thread().name)
        sent.append(message)

    async_to_sync(app)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return Answer(
        status=start["status"],
        headers={k.decode().lower(): v.decode() for k, v in start["headers"]},
        body=b"".join(
            m.get("body", b"") for m in sent if m["type"] == "http.response.body"
        ),
        thread=threads[0],
    )
