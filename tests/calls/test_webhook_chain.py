"""The Graph webhook runs through its own short middleware chain under ASGI
(callbot/asgi.py, ``WEBHOOK_MIDDLEWARE``): it keeps the security headers and its
answers, and every other path keeps Django's full chain."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

from django.core.signals import request_started
from django.db import connections
from django.test import Client

import pytest
from asgiref.sync import async_to_sync

from callbot import asgi
from callbot.calls import inboxapplier, ingestthreads, views
from callbot.calls.models import CallEvent, InboxBatch, Participant
from callbot.graph import wire_json
from tests.conftest import load_fixture
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import URL

pytestmark = pytest.mark.django_db


def through_asgi(method: str, path: str, body: bytes, auth: str) -> dict[str, Any]:
    """One request through ``callbot.asgi.application``; status and headers."""
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
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", auth.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []
    answered_on: list[str] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # the client stays until answered
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        answered_on.append(threading.current_thread().name)
        sent.append(message)

    async_to_sync(asgi.application)(scope, receive, send)
    start = sent[0]
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return {"status": start["status"], "headers": headers, "thread": answered_on[0]}


@pytest.mark.django_db(transaction=True)  # the handler closes old connections
def test_the_webhook_answers_through_its_short_chain_with_security_headers(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()

    answer = through_asgi("POST", URL, body, token_issuer.bearer())

    assert answer["status"] == 202
    assert CallEvent.objects.count() == 1
    headers = answer["headers"]
    assert headers["x-content-type-options"] == "nosniff"
    assert "referrer-policy" in headers
    # The page middleware did not run for it.
    assert "x-frame-options" not in headers
    assert "vary" not in headers  # no session looked at


@pytest.mark.django_db(transaction=True)
def test_other_paths_keep_the_full_chain() -> None:
    answer = through_asgi("GET", "/healthz", b"", "")

    headers = answer["headers"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def test_the_webhook_chain_is_the_configured_one() -> None:
    handler = asgi.webhook_asgi_app
    names = []
    layer: Any = handler._middleware_chain
    while True:
        layer = getattr(layer, "__wrapped__", layer)  # convert_exception_to_response
        if not hasattr(layer, "get_response"):
            break
        names.append(f"{type(layer).__module__}.{type(layer).__name__}")
        layer = layer.get_response
    assert names == [
        "callbot.runtime.webhookchain.InlineSecurityMiddleware",
        "callbot.observability.logcontext.LogContextMiddleware",
    ]


@pytest.fixture
def ingest_thread(settings: Any) -> Iterator[None]:
    """The webhook on an ingest thread, as servers run it; its connection
    closed after."""
    settings.WEBHOOK_INGEST_THREADS = 1
    yield
    threads = ingestthreads.executor()
    assert threads is not None
    threads.submit(connections.close_all).result()


@pytest.mark.django_db(transaction=True)
def test_deferred_webhook_requests_share_one_thread_and_are_not_ordered(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    ingest_thread: None,
) -> None:
    settings.WEBHOOK_APPLY = "deferred"
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)

    def not_read(body: bytes) -> None:
        raise AssertionError("stored batches are ordered by their rows")

    monkeypatch.setattr(views, "peek_batch", not_read)
    started_on: list[str] = []

    def record(sender: Any, **kwargs: Any) -> None:
        started_on.append(threading.current_thread().name)

    request_started.connect(record)
    try:
        answers = [
            through_asgi(
                "POST",
                URL,
                json.dumps(load_fixture(name)).encode(),
                token_issuer.bearer(),
            )
            for name in ("incoming_p2p_call.json", "call_established.json")
        ]
    finally:
        request_started.disconnect(record)

    assert [a["status"] for a in answers] == [202, 202]
    assert InboxBatch.objects.count() == 2
    assert answers[1]["headers"]["x-content-type-options"] == "nosniff"
    # Django's request_started ran where the request was answered, on the
    # event loop's thread (WebhookHandler._post), not on a thread made for
    # each request nor after a hop to another.
    assert started_on == [a["thread"] for a in answers]


@pytest.mark.django_db(transaction=True)
def test_an_inline_batch_is_decoded_once_to_order_and_to_apply_it(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    ingest_thread: None,
) -> None:
    settings.WEBHOOK_APPLY = "inline"
    decoded: list[str] = []
    loads = wire_json.loads

    def counted(text: str) -> Any:
        decoded.append(text)
        return loads(text)

    monkeypatch.setattr(wire_json, "loads", counted)
    answers = [
        through_asgi(
            "POST", URL, json.dumps(load_fixture(name)).encode(), token_issuer.bearer()
        )
        for name in ("meeting_join_established.json", "roster_two_join.json")
    ]

    assert [a["status"] for a in answers] == [202, 202]
    assert Participant.objects.filter(left_at__isnull=True).count() == 3
    # Read once on the event loop for the calls it names (``peek_batch``),
    # then parsed from that document on the ingest thread.
    assert decoded == []
