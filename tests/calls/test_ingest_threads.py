"""On the embedded default the webhook applies batches on a long-lived thread that
keeps its SQLite connection (callbot/calls/ingestthreads.py): batches are stored
as before, the connection is opened once, and one that failed is replaced."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from django.db import connection, connections
from django.db.backends.signals import connection_created
from django.test import Client

import pytest

from callbot.calls import ingestthreads
from callbot.calls.models import CallEvent
from tests.conftest import load_fixture
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="ingest threads are SQLite's"
    ),
]


@pytest.fixture
def opened(settings: Any) -> Iterator[list[str]]:
    """The threads that opened a database connection while the test ran."""
    settings.WEBHOOK_INGEST_THREADS = 1
    names: list[str] = []

    def record(sender: Any, **kwargs: Any) -> None:
        names.append(threading.current_thread().name)

    connection_created.connect(record)
    yield names
    connection_created.disconnect(record)
    threads = ingestthreads.executor()
    assert threads is not None
    threads.submit(connections.close_all).result()


def test_batches_are_applied_on_one_thread_that_keeps_its_connection(
    webhook: Client, token_issuer: TestTokenIssuer, opened: list[str]
) -> None:
    for n, fixture in enumerate(["incoming_p2p_call.json", "call_established.json"]):
        response = post(
            webhook,
            load_fixture(fixture),
            token_issuer.bearer(),
            X_Microsoft_Skype_Message_ID=f"m{n}",
        )
        assert response.status_code == 202, response.content
        assert "app;dur=" in response["Server-Timing"]

    assert CallEvent.objects.count() == 2
    ingest = [name for name in opened if name.startswith("webhook-ingest")]
    assert len(ingest) == 1


def test_a_connection_that_failed_is_replaced(
    webhook: Client, token_issuer: TestTokenIssuer, opened: list[str]
) -> None:
    bearer = token_issuer.bearer()
    post(webhook, load_fixture("incoming_p2p_call.json"), bearer)
    threads = ingestthreads.executor()
    assert threads is not None

    def break_it() -> None:
        connection.connection.close()  # the server side went away
        connection.errors_occurred = True
        ingestthreads.run(lambda: None)

    threads.submit(break_it).result()
    response = post(webhook, load_fixture("call_established.json"), bearer)

    assert response.status_code == 202
    assert CallEvent.objects.count() == 2
    assert len([n for n in opened if n.startswith("webhook-ingest")]) == 2
