"""On the embedded default the webhook applies batches on a long-lived thread that
keeps its SQLite connection (callbot/calls/ingestthreads.py): batches are stored
as before, the connection is opened once, and one that failed is replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from django.db import connection, connections
from django.db.backends.signals import connection_created
from django.test import Client

import pytest

from callbot.calls import ingestthreads
from callbot.calls.models import Call, CallEvent
from callbot.calls.signals import CallActivity, call_activity
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
    """The threads that opened a connection to the main database while the test
    ran (the inbox's own file, on the embedded default, has its own)."""
    settings.WEBHOOK_INGEST_THREADS = 1
    names: list[str] = []

    def record(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.alias == "default":
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


@pytest.fixture
def two_threads(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Two ingest threads of the test's own; their connections closed after."""
    settings.WEBHOOK_INGEST_THREADS = 2
    threads = ingestthreads.OrderedThreads(2)
    monkeypatch.setattr(ingestthreads, "_executor", threads)
    yield threads
    both = threading.Barrier(2, timeout=10)

    def close() -> None:
        both.wait()  # one on each thread
        connections.close_all()

    closing = [threads.submit_ordered(frozenset({k}), close) for k in ("x", "y")]
    for future in closing:
        future.result(timeout=10)
    threads.shutdown()


def test_a_ring_goes_past_another_calls_after_commit_work_and_that_call_waits(
    webhook: Client, token_issuer: TestTokenIssuer, two_threads: Any, settings: Any
) -> None:
    """Inline (deferred batches keep their order by their rows): call A's
    ``established`` is held in its after-commit work (with tasks in-process, the
    IVR's Graph requests): a new call B rings through at once, and A's
    ``deleted``, which arrived before B's ring, is applied only after it."""
    settings.WEBHOOK_APPLY = "inline"
    bearer = token_issuer.bearer()
    post(webhook, load_fixture("incoming_p2p_call.json"), bearer)
    call_a = Call.objects.get()
    entered, release = threading.Event(), threading.Event()

    def slow(sender: Any, activity: list[CallActivity], **kwargs: Any) -> None:
        if any(a.call_id == call_a.pk and a.state == "established" for a in activity):
            entered.set()
            assert release.wait(10)

    call_activity.connect(slow, dispatch_uid="test.slow")
    answers: dict[str, int] = {}

    def deliver(name: str) -> None:
        answers[name] = post(Client(), load_fixture(name), bearer).status_code

    try:
        established = threading.Thread(target=deliver, args=["call_established.json"])
        established.start()
        assert entered.wait(10)
        deleted = threading.Thread(target=deliver, args=["call_terminated.json"])
        deleted.start()
        deadline = time.monotonic() + 10
        while two_threads.waiting() == 0:  # A's deleted, waiting for A's established
            assert time.monotonic() < deadline
            time.sleep(0.005)

        ring = load_fixture("incoming_p2p_call.json")
        ring["value"][0]["resourceUrl"] = "/communications/calls/2f0c-b-rings"
        assert post(webhook, ring, bearer).status_code == 202

        assert Call.objects.filter(graph_id="2f0c-b-rings").exists()
        assert Call.objects.get(pk=call_a.pk).state == "established"
    finally:
        release.set()
        call_activity.disconnect(dispatch_uid="test.slow")
    established.join(10)
    deleted.join(10)

    assert answers == {"call_established.json": 202, "call_terminated.json": 202}
    events = CallEvent.objects.filter(call=call_a).order_by("sequence")
    assert [e.change_type for e in events] == ["created", "updated", "deleted"]
    assert Call.objects.get(pk=call_a.pk).state == "terminated"
