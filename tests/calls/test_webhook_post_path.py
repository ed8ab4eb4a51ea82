"""A POST to the webhook under ASGI takes ``WebhookHandler._post`` (callbot/asgi.py):
Django's request and response, the webhook's middleware and view, without URL
resolving, the disconnect task and the thread hops of Django's ``handle``. Each
answer through it is the answer Django's test client gets from the same view."""

from __future__ import annotations

import json
import threading
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import OperationalError
from django.test import Client

import pytest

from callbot.calls import inboxapplier, views
from callbot.calls.models import CallEvent, InboxBatch
from tests.conftest import load_fixture
from tests.support.asgi import Answer, asgi_request
from tests.support.jwt import JwksServer, TestTokenIssuer
from tests.support.webhook import URL, post

pytestmark = pytest.mark.django_db(transaction=True)


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


def same_answer(through_client: Any, answer: Answer) -> None:
    """The ASGI answer is the test client's: status, body, and the headers the
    webhook and its middleware set."""
    headers = answer.headers
    assert answer.status == through_client.status_code
    assert answer.json() == through_client.json()
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

    answer = asgi_request("POST", URL, body, auth=token_issuer.bearer())

    assert answer.status == 202
    assert answer.headers["server-timing"].startswith("app;dur=")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert kept() == 1
    if apply_mode == "deferred":
        assert answer.json() == {"accepted": 1}
    else:
        assert answer.json() == {"stored": 1, "duplicates": 0, "quarantined": 0}
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

    answer = asgi_request("POST", URL, body, auth=auth, chunk=chunk)
    through_client = post(webhook, body, auth)

    assert answer.status == code
    same_answer(through_client, answer)
    if code == 503 and case == "database away":
        assert answer.headers["retry-after"] == str(views.DATABASE_RETRY_AFTER_SECONDS)
    monkeypatch.undo()
    assert kept() == 0


def test_a_get_is_refused_405_as_through_django(
    webhook: Client, ingest_thread: None
) -> None:
    answer = asgi_request("GET", URL)

    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_post_sends_the_request_signals_without_a_thread_hop(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    ingest_thread: None,
    apply_mode: str,
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()
    signalled_on: list[tuple[str, str]] = []

    def started(sender: Any, **kwargs: Any) -> None:
        signalled_on.append(("started", threading.current_thread().name))

    def finished(sender: Any, **kwargs: Any) -> None:
        signalled_on.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        answer = asgi_request("POST", URL, body, auth=token_issuer.bearer())
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)

    assert answer.status == 202
    # Both on the thread that runs the event loop (the one the answer was
    # sent from), not on a thread of their own.
    assert signalled_on == [("started", answer.thread), ("finished", answer.thread)]
