"""A POST to the webhook under ASGI takes ``WebhookHandler._post`` (callbot/asgi.py):
Django's request and response, the webhook's middleware and view, without URL
resolving, the disconnect task and the thread hops of Django's ``handle``. Each
answer through it is the answer Django's test client gets from the same view."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import OperationalError, connections
from django.test import Client

import pytest
from asgiref.sync import async_to_sync

from callbot import asgi
from callbot.calls import inboxapplier, ingestthreads, views
from callbot.calls.models import CallEvent, InboxBatch
from tests.conftest import load_fixture
from tests.support.jwt import JwksServer, TestTokenIssuer
from tests.support.webhook import URL, post

pytestmark = pytest.mark.django_db(transaction=True)


def through_asgi(
    method: str,
    body: bytes,
    auth: str | None,
    *,
    chunk: int | None = None,
    threads: list[str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through ``callbot.asgi.application``: status, headers and
    body. ``chunk``: the body sent in pieces of that size with no
    Content-Length (a chunked request). ``threads`` gets the name of the thread
    the response was sent from."""
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if auth is not None:
        headers.append((b"authorization", auth.encode()))
    if chunk is None:
        headers.append((b"content-length", str(len(body)).encode()))
        pieces = [body]
    else:
        pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays until answered
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if threads is not None and message["type"] == "http.response.start":
            threads.append(threading.current_thread().name)
        sent.append(message)

    async_to_sync(asgi.application)(scope, receive, send)
    start = sent[0]
    answer_headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    content = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], answer_headers, content


@pytest.fixture
def ingest_thread(settings: Any) -> Iterator[None]:
    """The webhook on an ingest thread, as servers run it (``_post`` is taken
    only then); its connection closed after."""
    settings.WEBHOOK_INGEST_THREADS = 1
    yield
    threads = ingestthreads.executor()
    assert threads is not None
    threads.submit(connections.close_all).result()


@pytest.fixture(params=["inline", "deferred"])
def apply_mode(
    request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> str:
    settings.WEBHOOK_APPLY = request.param
    # Stored rows are left in the inbox: what is kept is what is looked at.
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)
    return str(request.param)


def kept() -> int:
    return CallEvent.objects.count() + InboxBatch.objects.count()


def same_answer(
    through_client: Any, status: int, headers: dict[str, str], content: bytes
) -> None:
    """The ASGI answer is the test client's: status, body, and the headers the
    webhook and its middleware set."""
    assert status == through_client.status_code
    assert json.loads(content) == through_client.json()
    for name in (
        "content-type",
        "retry-after",
        "x-content-type-options",
        "referrer-policy",
        "cross-origin-opener-policy",
    ):
        assert headers.get(name) == through_client.headers.get(name), name
    assert "x-frame-options" not in headers  # the page middleware did not run
    assert "vary" not in headers  # no session looked at


def test_a_signed_batch_is_answered_202_with_server_timing_as_through_django(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    ingest_thread: None,
    apply_mode: str,
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()
    threads: list[str] = []

    status, headers, content = through_asgi(
        "POST", body, token_issuer.bearer(), threads=threads
    )

    assert status == 202
    assert headers["server-timing"].startswith("app;dur=")
    assert headers["x-content-type-options"] == "nosniff"
    assert kept() == 1
    answer = json.loads(content)
    if apply_mode == "deferred":
        assert answer == {"accepted": 1}
    else:
        assert answer == {"stored": 1, "duplicates": 0, "quarantined": 0}
        # The same batch again, through Django's test client: all duplicates,
        # answered alike.
        again = post(webhook, body, token_issuer.bearer())
        assert again.json() == {"stored": 0, "duplicates": 1, "quarantined": 0}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unsigned", 401),
        ("bad token", 401),
        ("wrong scheme", 401),
        ("not a batch", 400),
        ("not JSON", 400),
        ("too large", 413),
        ("too large, chunked", 413),
        ("too large, unsigned", 401),
        ("signing keys away", 503),
        ("database away", 503),
    ],
)
def test_each_refusal_is_the_views_with_nothing_stored(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    ingest_thread: None,
    apply_mode: str,
    case: str,
    code: int,
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()
    auth: str | None = token_issuer.bearer()
    chunk = None
    if case == "unsigned":
        auth = None
    elif case == "bad token":
        auth = "Bearer not.a.token"
    elif case == "wrong scheme":
        auth = f"Basic {token_issuer.mint()}"
    elif case == "not a batch":
        body = json.dumps({"value": "nothing"}).encode()
    elif case == "not JSON":
        body = b"{not json"
    elif case.startswith("too large"):
        settings.WEBHOOK_MAX_BYTES = len(body) - 1
        chunk = 100 if case.endswith("chunked") else None
        auth = None if case.endswith("unsigned") else auth
    elif case == "signing keys away":
        jwks_server.stop()
    elif case == "database away":

        def unreachable(*args: Any, **kwargs: Any) -> None:
            raise OperationalError("connection refused")

        if apply_mode == "deferred":
            monkeypatch.setattr(InboxBatch.objects, "create", unreachable)
        else:
            monkeypatch.setattr(views, "apply_notifications", unreachable)

    status, headers, content = through_asgi("POST", body, auth, chunk=chunk)
    through_client = post(webhook, body, auth)

    assert status == code
    same_answer(through_client, status, headers, content)
    if code == 503 and case == "database away":
        assert headers["retry-after"] == str(views.DATABASE_RETRY_AFTER_SECONDS)
    monkeypatch.undo()
    assert kept() == 0


def test_a_get_is_refused_405_as_through_django(
    webhook: Client, ingest_thread: None
) -> None:
    status, headers, _ = through_asgi("GET", b"", None)

    assert status == 405
    assert headers["allow"] == "POST"
    assert headers["x-content-type-options"] == "nosniff"


def test_a_post_sends_the_request_signals_without_a_thread_hop(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    ingest_thread: None,
    apply_mode: str,
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()
    answered_on: list[str] = []
    signalled_on: list[tuple[str, str]] = []

    def started(sender: Any, **kwargs: Any) -> None:
        signalled_on.append(("started", threading.current_thread().name))

    def finished(sender: Any, **kwargs: Any) -> None:
        signalled_on.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        status, _, _ = through_asgi(
            "POST", body, token_issuer.bearer(), threads=answered_on
        )
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)

    assert status == 202
    # Both on the thread that runs the event loop (the one the answer was
    # sent from), not on a thread of their own.
    assert signalled_on == [
        ("started", answered_on[0]),
        ("finished", answered_on[0]),
    ]
