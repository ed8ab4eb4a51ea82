"""The Graph webhook runs through its own short middleware chain under ASGI
(callbot/asgi.py, ``WEBHOOK_MIDDLEWARE``): it keeps the security headers and its
answers, and every other path keeps Django's full chain."""

from __future__ import annotations

import json
import threading
from typing import Any

from django.core.signals import request_started
from django.test import Client

import pytest

from callbot import asgi
from callbot.calls import inboxapplier, views
from callbot.calls.models import CallEvent, InboxBatch, Participant
from callbot.graph import wire_json
from tests.conftest import load_fixture
from tests.support.asgi import asgi_request
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import URL

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # the handler closes old connections
def test_the_webhook_answers_through_its_short_chain_with_security_headers(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()

    answer = asgi_request("POST", URL, body, auth=token_issuer.bearer())

    assert answer.status == 202
    assert CallEvent.objects.count() == 1
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "referrer-policy" in headers
    # The page middleware did not run for it.
    assert "x-frame-options" not in headers
    assert "vary" not in headers  # no session looked at


@pytest.mark.django_db(transaction=True)
def test_other_paths_keep_the_full_chain() -> None:
    answer = asgi_request("GET", "/healthz")

    headers = answer.headers
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
            asgi_request(
                "POST",
                URL,
                json.dumps(load_fixture(name)).encode(),
                auth=token_issuer.bearer(),
            )
            for name in ("incoming_p2p_call.json", "call_established.json")
        ]
    finally:
        request_started.disconnect(record)

    assert [a.status for a in answers] == [202, 202]
    assert InboxBatch.objects.count() == 2
    assert answers[1].headers["x-content-type-options"] == "nosniff"
    # Django's request_started ran where the request was answered, on the
    # event loop's thread (WebhookHandler._post), not on a thread made for
    # each request nor after a hop to another.
    assert started_on == [a.thread for a in answers]


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
        asgi_request(
            "POST",
            URL,
            json.dumps(load_fixture(name)).encode(),
            auth=token_issuer.bearer(),
        )
        for name in ("meeting_join_established.json", "roster_two_join.json")
    ]

    assert [a.status for a in answers] == [202, 202]
    assert Participant.objects.filter(left_at__isnull=True).count() == 3
    # Read once on the event loop for the calls it names (``peek_batch``),
    # then parsed from that document on the ingest thread.
    assert decoded == []
