"""The inbox's applier takes a ringing call before other calls' backlog
(``callbot/calls/inboxorder.py``), never before an earlier batch of its own
call, nor past a batch whose calls cannot be told; a row stored while it drains
is read before its lock is released, and its process retries a drain an outage
failed on a new connection (``inboxapplier.py``)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

from django.db import OperationalError, connections, router, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls import inbox, inboxapplier, later, live
from callbot.calls.inboxorder import ring_first
from callbot.calls.models import Call, CallEvent, InboxBatch
from callbot.calls.signals import call_activity
from callbot.graph.notifications import parse_notification_batch
from tests.calls.test_inbox import call_batch, states_applied
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import post


def parsed(body: dict[str, Any]) -> Any:
    return parse_notification_batch(json.dumps(body).encode())


def test_a_ring_goes_before_other_calls_backlog_in_arrival_order() -> None:
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    page = [
        ("a-established", parsed(call_batch(a, "established"))),
        ("b-rings", parsed(call_batch(b, "incoming"))),
        ("a-terminated", parsed(call_batch(a, "terminated"))),
        ("c-rings", parsed(call_batch(c, "incoming"))),
    ]

    assert ring_first(page) == (
        ["b-rings", "c-rings"],
        ["a-established", "a-terminated"],
    )


def test_a_ring_never_passes_an_earlier_batch_of_its_own_call() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    both = {"value": [*call_batch(a, "established")["value"]]}
    both["value"] += call_batch(b, "terminated")["value"]
    page = [
        ("a-and-b", parsed(both)),
        ("b-rings-again", parsed(call_batch(b, "incoming"))),
        ("a-rings-again", parsed(call_batch(a, "incoming", "established"))),
    ]

    assert ring_first(page) == ([], ["a-and-b", "b-rings-again", "a-rings-again"])


def test_nothing_passes_a_batch_whose_calls_cannot_be_told() -> None:
    a = str(uuid.uuid4())
    broken = {"changeType": "updated", "resourceUrl": "/x", "resourceData": "oops"}
    page = [
        ("unreadable", None),
        ("a-rings", parsed(call_batch(a, "incoming"))),
    ]
    malformed = [
        ("malformed", parsed({"value": [broken]})),
        ("a-rings", parsed(call_batch(a, "incoming"))),
    ]

    assert ring_first(page) == ([], ["unreadable", "a-rings"])
    assert ring_first(malformed) == ([], ["malformed", "a-rings"])


@pytest.mark.django_db
def test_the_drain_applies_and_publishes_a_ring_before_the_backlog_stored_before_it(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_APPLY = "deferred"
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)
    published: list[int] = []
    real_publish = live.publish_deltas

    def publish(deltas: list[live.CallDelta]) -> None:
        published.extend(d.call_id for d in deltas)
        real_publish(deltas)

    monkeypatch.setattr(live, "publish_deltas", publish)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    bearer = token_issuer.bearer()
    post(webhook, call_batch(a, "incoming"), bearer, X_Microsoft_Skype_Message_ID="0")
    inbox.drain()
    published.clear()
    stream = [
        call_batch(a, "established"),
        call_batch(a, "terminating"),
        call_batch(b, "incoming"),
        call_batch(a, "terminated"),
        call_batch(b, "established"),
    ]
    for n, body in enumerate(stream, start=1):
        post(webhook, body, bearer, X_Microsoft_Skype_Message_ID=f"m{n}")

    with django_capture_on_commit_callbacks(execute=True):
        assert inbox.drain().applied == 5

    assert InboxBatch.objects.count() == 0
    assert states_applied(a) == ["incoming", "established", "terminating", "terminated"]
    assert states_applied(b) == ["incoming", "established"]
    ring = CallEvent.objects.get(call__graph_id=b, message_id="m3")
    assert not CallEvent.objects.filter(call__graph_id=a, pk__lt=ring.pk).exclude(
        message_id="0"
    )
    assert published[0] == Call.objects.get(graph_id=b).pk


@pytest.mark.django_db
def test_a_row_stored_while_draining_is_read_before_the_lock_is_released(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.WEBHOOK_APPLY = "deferred"
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    bearer = token_issuer.bearer()
    post(webhook, call_batch(a, "incoming"), bearer)
    waiting = [call_batch(b, "incoming")]

    def stored_since() -> bool:
        if waiting:
            post(webhook, waiting.pop(), bearer)
            return True
        return False

    with CaptureQueriesContext(connections[router.db_for_write(InboxBatch)]) as queries:
        assert inbox.drain(stored_since).applied == 2

    on_inbox = [
        q["sql"].split()[0]
        for q in queries
        if "calls_inboxbatch" in q["sql"] and not q["sql"].startswith("INSERT")
    ]
    # read a, delete a, read b (no unlock, look and lock between), delete b,
    # and the one look after the unlock
    assert on_inbox == ["SELECT", "DELETE", "SELECT", "DELETE", "SELECT"]
    assert len([q for q in queries if "advisory_lock" in q["sql"]]) in (0, 1)
    assert states_applied(b) == ["incoming"]


@pytest.mark.django_db
def test_the_applier_process_drains_again_at_once_after_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drains: list[bool] = []

    def drain(stored_since: Any) -> inbox.Drained:
        drains.append(True)
        if len(drains) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return inbox.Drained()

    monkeypatch.setattr(inbox, "drain", drain)
    read, write = os.pipe()
    with os.fdopen(read, "rb") as wakeups:
        loop = threading.Thread(target=inboxapplier.follow, args=(wakeups,))
        loop.start()
        os.write(write, b"w")
        deadline = time.monotonic() + 5
        while len(drains) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.close(write)
        loop.join(timeout=5)

    assert drains == [True, True]
    assert not loop.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_row_stored_while_draining_is_applied_before_the_rows_before_it_are_deleted(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Committed, the applied rows are deleted once nothing a store woke the
    applier for is waiting, and before the lock is released: a ring stored
    while another batch was applied does not wait for that batch's delete."""
    settings.WEBHOOK_APPLY = "deferred"
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    bearer = token_issuer.bearer()
    post(webhook, call_batch(a, "incoming"), bearer)
    waiting = [call_batch(b, "incoming")]

    def stored_since() -> bool:
        if waiting:
            post(webhook, waiting.pop(), bearer)
            return True
        return False

    with CaptureQueriesContext(connections[router.db_for_write(InboxBatch)]) as queries:
        assert inbox.drain(stored_since).applied == 2

    on_inbox = [
        q["sql"].split()[0]
        for q in queries
        if "calls_inboxbatch" in q["sql"] and not q["sql"].startswith("INSERT")
    ]
    assert on_inbox == ["SELECT", "SELECT", "DELETE", "SELECT"]
    assert inbox.pending() == 0
    assert states_applied(a) == ["incoming"]
    assert states_applied(b) == ["incoming"]


@pytest.mark.django_db(transaction=True)
def test_work_nobody_waits_on_runs_after_a_ring_stored_meanwhile(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A's after-commit work that no person waits on (the API's events, a failed
    # action's alert: ``later``) is held while B, stored as A was applied, is
    # read, applied and published; then it runs, before the drain ends.
    settings.WEBHOOK_APPLY = "deferred"
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)
    published: list[str] = []
    real_publish = live.publish_deltas

    def publish(deltas: list[live.CallDelta]) -> None:
        published.append("delta")
        real_publish(deltas)

    monkeypatch.setattr(live, "publish_deltas", publish)
    held_ran: list[set[str]] = []

    def on_activity(sender: Any, activity: Any, **kwargs: Any) -> None:
        def work() -> None:
            published.append("held")
            held_ran.append(set(Call.objects.values_list("graph_id", flat=True)))

        later.run_or_hold(work)

    call_activity.connect(on_activity, dispatch_uid="test-held-work")
    try:
        a, b = str(uuid.uuid4()), str(uuid.uuid4())
        bearer = token_issuer.bearer()
        post(webhook, call_batch(a, "incoming"), bearer)
        waiting = [call_batch(b, "incoming")]

        def stored_since() -> bool:
            if waiting:
                post(webhook, waiting.pop(), bearer)
                return True
            return False

        assert inbox.drain(stored_since).applied == 2
    finally:
        call_activity.disconnect(dispatch_uid="test-held-work")

    assert published == ["delta", "delta", "held", "held"]
    assert b in held_ran[0]  # A's work ran once B was stored
    assert InboxBatch.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_outside_a_drain_work_nobody_waits_on_runs_at_the_commit() -> None:
    ran: list[str] = []
    with transaction.atomic():
        later.on_commit(lambda: ran.append("work"))
        assert ran == []
    assert ran == ["work"]
