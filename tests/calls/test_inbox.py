"""Deferred apply (``WEBHOOK_APPLY = "deferred"``, callbot/calls/inbox.py): the
webhook stores a verified batch as one row and answers 202; the applier applies
stored batches in arrival order, exactly once, and a batch that cannot be applied
is quarantined without holding up the ones behind it."""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from django.core.management import call_command
from django.db import OperationalError, connection, connections, router, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import pytest

from callbot.calls import inbox, inboxapplier, inboxlocks, ingest, tasks
from callbot.calls.models import (
    Call,
    CallEvent,
    InboxBatch,
    QuarantinedNotification,
)
from callbot.calls.signals import CallActivity, call_activity
from tests.conftest import load_fixture
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import post, wait_for_inbox

pytestmark = pytest.mark.django_db

# Before any fixture replaces them (the deferred test mode of tests/conftest.py).
_REAL_KICK = inboxapplier.kick
_REAL_START = inboxapplier.start


@pytest.fixture
def deferred(settings: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Deferred mode with the applier left asleep: the test drains the inbox
    itself. Returns the list the wake-ups are counted in."""
    settings.WEBHOOK_APPLY = "deferred"
    kicks: list[int] = []
    monkeypatch.setattr(inboxapplier, "kick", lambda: kicks.append(1))
    return kicks


def call_batch(call_id: str, *states: str) -> dict[str, Any]:
    """A batch of call notifications for ``call_id``, one per state, in order."""
    return {
        "value": [
            {
                "changeType": "created" if state == "incoming" else "updated",
                "resourceUrl": f"/communications/calls/{call_id}",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.call",
                    "id": call_id,
                    "state": state,
                    "direction": "incoming",
                },
            }
            for state in states
        ]
    }


def states_applied(call_id: str) -> list[str]:
    """The states of a call's stored notifications, in the order applied."""
    events = CallEvent.objects.filter(call__graph_id=call_id).order_by("sequence")
    return [e.payload["resourceData"]["state"] for e in events]


def test_a_batch_is_stored_answered_and_applied_after(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    response = post(
        webhook,
        load_fixture("incoming_p2p_call.json"),
        token_issuer.bearer(),
        X_Microsoft_Skype_Message_ID="abc",
    )

    assert response.status_code == 202
    assert response.json() == {"accepted": 1}
    assert "app;dur=" in response["Server-Timing"]
    assert deferred == [1]
    assert InboxBatch.objects.count() == 1
    assert CallEvent.objects.count() == 0

    drained = inbox.drain()

    assert (drained.applied, drained.set_aside) == (1, 0)
    assert InboxBatch.objects.count() == 0
    event = CallEvent.objects.get()
    assert event.message_id == "abc"
    assert event.tenant_id == token_issuer.tenant_id
    assert Call.objects.get().state == "incoming"


def test_interleaved_batches_are_applied_in_arrival_order_per_call(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    stream = [
        call_batch(a, "incoming"),
        call_batch(b, "incoming", "establishing"),
        {
            "value": [
                *call_batch(a, "establishing")["value"],
                *call_batch(b, "established")["value"],
            ]
        },
        call_batch(a, "established"),
        call_batch(b, "terminating"),
        call_batch(a, "terminated"),
        call_batch(b, "terminated"),
    ]
    bearer = token_issuer.bearer()
    for n, body in enumerate(stream):
        response = post(webhook, body, bearer, X_Microsoft_Skype_Message_ID=f"m{n}")
        assert response.status_code == 202

    inbox.drain()

    assert states_applied(a) == [
        "incoming",
        "establishing",
        "established",
        "terminated",
    ]
    assert states_applied(b) == [
        "incoming",
        "establishing",
        "established",
        "terminating",
        "terminated",
    ]
    assert set(Call.objects.values_list("state", flat=True)) == {"terminated"}


def test_a_batch_stored_by_a_process_that_died_is_applied_by_the_sweep(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    # The fixture's applier never wakes: the process "died" after answering.
    call_id = str(uuid.uuid4())
    post(webhook, call_batch(call_id, "incoming"), token_issuer.bearer())
    assert CallEvent.objects.count() == 0

    outcome = tasks.apply_webhook_inbox()

    assert outcome == {"applied": 1, "set_aside": 0}
    assert states_applied(call_id) == ["incoming"]
    assert InboxBatch.objects.count() == 0
    assert tasks.apply_webhook_inbox() == {"applied": 0, "set_aside": 0}


class _Killed(BaseException):
    """The process ending (SIGKILL), as far as the code running in it goes."""


@pytest.mark.django_db(transaction=True)
def test_a_row_whose_applier_died_after_its_commit_is_applied_again_and_its_ringing_call_announced(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The applier committed the batch and died before its after-commit work
    (the call activity the bot's policy answers a ringing call on) left: the
    row is still there, and applying it again announces the call again."""
    seen: list[CallActivity] = []

    def receiver(sender: Any, activity: list[CallActivity], **kwargs: Any) -> None:
        seen.extend(activity)

    call_activity.connect(receiver, dispatch_uid="test-inbox-announced")
    try:
        post(webhook, load_fixture("incoming_p2p_call.json"), token_issuer.bearer())
        on_commit = transaction.on_commit

        def killed() -> None:
            raise _Killed

        # The process ends at its first after-commit callback: the others, the
        # row's delete among them, never run.
        with monkeypatch.context() as dying:
            dying.setattr(transaction, "on_commit", lambda *a, **k: on_commit(killed))
            with pytest.raises(_Killed):
                inbox.drain()
        assert seen == []
        assert inbox.pending() == 1
        assert Call.objects.get().state == "incoming"

        again = inbox.drain()
    finally:
        call_activity.disconnect(dispatch_uid="test-inbox-announced")

    assert (again.applied, again.stored, again.duplicates) == (1, 0, 1)
    assert inbox.pending() == 0
    assert CallEvent.objects.count() == 1
    [activity] = seen
    assert (activity.created, activity.state) == (True, "incoming")


def test_a_redelivered_batch_is_applied_once(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    body = load_fixture("incoming_p2p_call.json")
    bearer = token_issuer.bearer()
    post(webhook, body, bearer, X_Microsoft_Skype_Message_ID="m1")
    post(webhook, body, bearer, X_Microsoft_Skype_Message_ID="m2")
    assert InboxBatch.objects.count() == 2

    inbox.drain()

    assert CallEvent.objects.count() == 1
    assert CallEvent.objects.get().message_id == "m1"
    assert Call.objects.get().event_count == 1
    assert InboxBatch.objects.count() == 0


def test_the_database_down_at_store_time_is_a_503_with_nothing_kept(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(**fields: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(InboxBatch.objects, "create", unreachable)
    response = post(
        webhook, load_fixture("incoming_p2p_call.json"), token_issuer.bearer()
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"
    assert deferred == []
    monkeypatch.undo()
    assert InboxBatch.objects.count() == 0


def test_forged_and_malformed_batches_are_refused_before_storing(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    forged = post(webhook, load_fixture("incoming_p2p_call.json"), "Bearer nope")
    malformed = post(webhook, b"{not json", token_issuer.bearer())

    assert (forged.status_code, malformed.status_code) == (401, 400)
    assert InboxBatch.objects.count() == 0
    assert deferred == []


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> None:
    """Applying the batch with message id ``poison`` raises a bug of ours."""
    real = inbox.apply_deliveries

    def apply(deliveries: Any) -> Any:
        if any(d.message_id == "poison" for d in deliveries):
            raise ValueError("a bug of ours")
        return real(deliveries)

    monkeypatch.setattr(inbox, "apply_deliveries", apply)


def post_around_poison(
    webhook: Client, token_issuer: TestTokenIssuer
) -> tuple[str, str, str]:
    before, poisoned, after = (str(uuid.uuid4()) for _ in range(3))
    bearer = token_issuer.bearer()
    post(
        webhook,
        call_batch(before, "incoming"),
        bearer,
        X_Microsoft_Skype_Message_ID="m1",
    )
    post(
        webhook,
        call_batch(poisoned, "incoming", "established"),
        bearer,
        X_Microsoft_Skype_Message_ID="poison",
    )
    post(
        webhook,
        call_batch(after, "incoming"),
        bearer,
        X_Microsoft_Skype_Message_ID="m3",
    )
    return before, poisoned, after


def test_a_batch_that_fails_to_apply_is_quarantined_and_the_rest_go_on(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int], poison: None
) -> None:
    before, poisoned, after = post_around_poison(webhook, token_issuer)

    drained = inbox.drain()

    assert (drained.applied, drained.set_aside) == (2, 1)
    assert states_applied(before) == ["incoming"]
    assert states_applied(after) == ["incoming"]
    assert not Call.objects.filter(graph_id=poisoned).exists()
    kept = QuarantinedNotification.objects.order_by("position")
    assert [(q.reason, q.message_id, q.position) for q in kept] == [
        ("failed", "poison", 0),
        ("failed", "poison", 1),
    ]
    assert "a bug of ours" in kept[0].error
    assert InboxBatch.objects.count() == 0


def test_a_batch_that_cannot_even_be_quarantined_is_set_aside(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    poison: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise ValueError("cannot quarantine")

    monkeypatch.setattr(inbox, "quarantine_batch", broken)
    before, _, after = post_around_poison(webhook, token_issuer)

    drained = inbox.drain()

    assert (drained.applied, drained.set_aside) == (2, 1)
    assert states_applied(before) == ["incoming"]
    assert states_applied(after) == ["incoming"]
    row = InboxBatch.objects.get()
    assert row.message_id == "poison"
    assert "a bug of ours" in row.error
    assert "cannot quarantine" in row.error
    assert inbox.pending() == 0
    assert inbox.drain().applied == 0  # skipped from then on


def test_an_outage_while_applying_leaves_the_row_for_later(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_id = str(uuid.uuid4())
    post(webhook, call_batch(call_id, "incoming"), token_issuer.bearer())

    def away(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(inbox, "apply_deliveries", away)
    with pytest.raises(OperationalError):
        inbox.drain()
    assert inbox.pending() == 1
    assert QuarantinedNotification.objects.count() == 0

    monkeypatch.setattr(inbox, "apply_deliveries", ingest.apply_deliveries)
    assert inbox.drain().applied == 1
    assert states_applied(call_id) == ["incoming"]


def test_inline_mode_stores_nothing_in_the_inbox(
    webhook: Client, token_issuer: TestTokenIssuer, settings: Any
) -> None:
    settings.WEBHOOK_APPLY = "inline"
    response = post(
        webhook, load_fixture("incoming_p2p_call.json"), token_issuer.bearer()
    )

    assert response.json() == {"stored": 1, "duplicates": 0, "quarantined": 0}
    assert InboxBatch.objects.count() == 0


def test_the_applier_process_loop_drains_when_woken_and_ends_with_its_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drains: list[int] = []
    monkeypatch.setattr(inbox, "drain", lambda stored_since: drains.append(1))
    read, write = os.pipe()
    with os.fdopen(read, "rb") as wakeups:
        loop = threading.Thread(target=inboxapplier.follow, args=(wakeups,))
        loop.start()
        os.write(write, b"ww")
        deadline = time.monotonic() + 5
        while not drains and time.monotonic() < deadline:
            time.sleep(0.01)
        os.close(write)
        loop.join(timeout=5)

    assert drains
    assert not loop.is_alive()


# --- with the applier really running, on its own connection ----------------------------


@pytest.fixture
def applier_thread(settings: Any) -> Iterator[None]:
    settings.WEBHOOK_APPLY = "deferred"
    settings.WEBHOOK_INBOX_APPLIER = "thread"
    yield
    wait_for_inbox()
    inboxapplier.stop_applier()


@pytest.mark.django_db(transaction=True)
def test_the_applier_thread_applies_what_the_webhook_stored(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    applier_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inboxapplier, "kick", _REAL_KICK)
    a = str(uuid.uuid4())
    bearer = token_issuer.bearer()
    for n, state in enumerate(["incoming", "establishing", "established"]):
        post(
            webhook, call_batch(a, state), bearer, X_Microsoft_Skype_Message_ID=f"m{n}"
        )

    wait_for_inbox()

    assert states_applied(a) == ["incoming", "establishing", "established"]


@pytest.fixture
def applier_process(settings: Any) -> Iterator[None]:
    settings.WEBHOOK_APPLY = "deferred"
    settings.WEBHOOK_INBOX_APPLIER = "process"
    yield
    inboxapplier.stop_applier()


@pytest.mark.django_db(transaction=True)
def test_the_applier_process_applies_what_the_webhook_stored(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    applier_process: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inboxapplier, "kick", _REAL_KICK)
    a = str(uuid.uuid4())
    bearer = token_issuer.bearer()
    for n, state in enumerate(["incoming", "establishing", "established"]):
        post(
            webhook, call_batch(a, state), bearer, X_Microsoft_Skype_Message_ID=f"m{n}"
        )

    wait_for_inbox(timeout=30)  # the child starts Django first

    assert states_applied(a) == ["incoming", "establishing", "established"]
    child = inboxapplier._applier._child
    assert child is not None
    assert child.poll() is None
    inboxapplier.stop_applier()
    assert child.returncode == 0  # it ended with its pipe


class _EveryThreadAcquires:
    """Stands in for the process lock so two threads of one process race on the
    database's lock alone, as two web processes' appliers do."""

    def acquire(self, blocking: bool = True) -> bool:
        return True

    def release(self) -> None:
        pass


@pytest.mark.django_db(transaction=True)
def test_two_appliers_racing_apply_each_batch_once_in_arrival_order(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    monkeypatch.setattr(inboxlocks, "_process_lock", _EveryThreadAcquires())
    real = inbox.apply_deliveries
    applied: list[str] = []

    def slow(deliveries: Any) -> Any:
        applied.extend(d.message_id for d in deliveries)
        time.sleep(0.005)  # long enough for the other applier to try meanwhile
        return real(deliveries)

    monkeypatch.setattr(inbox, "apply_deliveries", slow)
    settings.WEBHOOK_INBOX_GROUP = 4  # rows in groups, and more than one group
    calls = [str(uuid.uuid4()) for _ in range(3)]
    states = [
        "incoming",
        "establishing",
        "established",
        "hold",
        "established",
        "terminated",
    ]
    bearer = token_issuer.bearer()
    for n, state in enumerate(states):
        for k, call_id in enumerate(calls):
            body = call_batch(call_id, state)
            if state == "established" and n == 4:
                body["value"][0]["resourceData"]["mediaState"] = {"audio": "active"}
            post(webhook, body, bearer, X_Microsoft_Skype_Message_ID=f"m{n}-{k}")
    stored = InboxBatch.objects.count()
    assert stored == len(states) * len(calls)

    results: list[inbox.Drained] = []
    errors: list[BaseException] = []

    def applier() -> None:
        try:
            results.append(inbox.drain())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    racers = [threading.Thread(target=applier) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)

    assert not errors
    assert sorted(applied) == sorted(set(applied))  # each by one applier, once
    assert sum(r.applied for r in results) == stored
    assert InboxBatch.objects.count() == 0
    for call_id in calls:
        assert states_applied(call_id) == states
    assert CallEvent.objects.count() == stored


def test_a_drain_reads_a_stored_batch_once_and_looks_for_more_only_after(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    """The inbox's statements for one stored batch: its row read whole (no id
    query first), its delete, and one look for rows stored meanwhile after the
    lock is released (no second read to find none left)."""
    post(webhook, load_fixture("incoming_p2p_call.json"), token_issuer.bearer())

    with CaptureQueriesContext(connections[router.db_for_write(InboxBatch)]) as queries:
        assert inbox.drain().applied == 1

    on_inbox = [q["sql"].split()[0] for q in queries if "calls_inboxbatch" in q["sql"]]
    assert on_inbox == ["SELECT", "DELETE", "SELECT"]
    assert '"body"' in next(q["sql"] for q in queries if "calls_inboxbatch" in q["sql"])


def test_more_rows_than_a_group_are_applied_group_by_group_in_order(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    settings: Any,
) -> None:
    settings.WEBHOOK_INBOX_GROUP = 2
    a = str(uuid.uuid4())
    states = ["incoming", "establishing", "established", "terminating", "terminated"]
    bearer = token_issuer.bearer()
    for n, state in enumerate(states):
        post(
            webhook, call_batch(a, state), bearer, X_Microsoft_Skype_Message_ID=f"m{n}"
        )

    assert inbox.drain().applied == 5

    events = CallEvent.objects.filter(call__graph_id=a).order_by("sequence")
    assert [e.message_id for e in events] == ["m0", "m1", "m2", "m3", "m4"]
    assert InboxBatch.objects.count() == 0


def test_batches_applied_together_store_what_each_would_alone(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    a = str(uuid.uuid4())
    broken = {"changeType": "updated", "resourceUrl": "/x", "resourceData": "oops"}
    first = call_batch(a, "incoming")
    first["value"].append(broken)
    second = call_batch(a, "established")
    second["value"].insert(0, {**broken, "resourceUrl": "/y"})
    bearer = token_issuer.bearer()
    post(webhook, first, bearer, X_Microsoft_Skype_Message_ID="m1")
    post(webhook, second, bearer, X_Microsoft_Skype_Message_ID="m2")

    assert inbox.drain().applied == 2  # one group, one transaction

    events = CallEvent.objects.filter(call__graph_id=a).order_by("sequence")
    assert [(e.message_id, e.payload["resourceData"]["state"]) for e in events] == [
        ("m1", "incoming"),
        ("m2", "established"),
    ]
    kept = QuarantinedNotification.objects.order_by("message_id")
    assert [(q.message_id, q.position, q.reason) for q in kept] == [
        ("m1", 1, "malformed"),
        ("m2", 0, "malformed"),
    ]
    assert Call.objects.get(graph_id=a).state == "established"


def test_an_applier_that_cannot_be_woken_does_not_fail_the_answer(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.WEBHOOK_APPLY = "deferred"

    def cannot_start() -> None:
        raise OSError("cannot fork")

    monkeypatch.setattr(inboxapplier, "kick", _REAL_KICK)
    monkeypatch.setattr(inboxapplier._applier, "kick", cannot_start)
    response = post(
        webhook, load_fixture("incoming_p2p_call.json"), token_issuer.bearer()
    )

    assert response.status_code == 202
    assert inbox.pending() == 1  # left for the sweep


def test_the_admin_lists_rows_set_aside_with_their_error(
    client: Client, alice: Any
) -> None:
    InboxBatch.objects.create(
        body=b"{}",
        message_id="m-aside",
        notifications=2,
        received_at=timezone.now(),
        error="ValueError: a bug of ours",
    )
    client.force_login(alice)

    listing = client.get("/admin/calls/inboxbatch/")

    assert listing.status_code == 200
    assert b"a bug of ours" in listing.content
    assert client.get("/admin/calls/inboxbatch/add/").status_code == 403


def test_manage_py_apply_inbox_drains_once_and_says_so(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    call_id = str(uuid.uuid4())
    post(webhook, call_batch(call_id, "incoming"), token_issuer.bearer())
    out = io.StringIO()

    call_command("apply_inbox", stdout=out)

    assert "applied 1 stored batches, set aside 0; 0 waiting" in out.getvalue()
    assert states_applied(call_id) == ["incoming"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"[1, 2]", 400, "body must be a JSON object with a 'value' array"),
        (b'{"value": "x"}', 400, "body must have a 'value' array of notifications"),
        (b'{"value": [' + b"{}," * 10_000 + b"{}]}", 413, "at most 10000"),
    ],
)
def test_a_malformed_batch_gets_parsings_answer_before_storing(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    deferred: list[int],
    body: bytes,
    status: int,
    message: str,
) -> None:
    # The deferred webhook checks the batch without parsing its notifications
    # (notifications.check_notification_batch); the batch's answer is the same.
    response = post(webhook, body, token_issuer.bearer())

    assert response.status_code == status
    assert message in response.json()["error"]["message"]
    assert InboxBatch.objects.count() == 0
    assert deferred == []


def test_notifications_the_webhook_no_longer_reads_are_quarantined_by_the_applier(
    webhook: Client, token_issuer: TestTokenIssuer, deferred: list[int]
) -> None:
    call_id = str(uuid.uuid4())
    batch = call_batch(call_id, "incoming")
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    batch["value"] += ["text", {"resourceUrl": "/nowhere"}, {"resourceData": deep}]

    response = post(webhook, batch, token_issuer.bearer())

    assert (response.status_code, response.json()) == (202, {"accepted": 4})
    drained = inbox.drain()
    assert (drained.applied, drained.stored, drained.quarantined) == (1, 1, 3)
    assert states_applied(call_id) == ["incoming"]
    kept = QuarantinedNotification.objects.order_by("position")
    assert [q.position for q in kept] == [1, 2, 3]


class _FakeChild:
    """Stands in for the applier process: running until waited for."""

    pid = 0

    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self.returncode = 0
        return 0


@pytest.mark.parametrize("mode", ["deferred", "inline"])
def test_healthz_starts_the_applier_process_once_where_batches_are_deferred(
    settings: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    settings.WEBHOOK_APPLY = mode
    settings.WEBHOOK_INBOX_APPLIER = "process"
    monkeypatch.setattr(inboxapplier, "start", _REAL_START)
    read, write = os.pipe()
    os.set_blocking(write, False)
    started: list[_FakeChild] = []

    def start_child() -> tuple[_FakeChild, int]:
        started.append(_FakeChild())
        return started[-1], write

    monkeypatch.setattr(inboxapplier, "_start_child", start_child)
    try:
        for _ in range(3):
            assert Client().get("/healthz").status_code in (200, 503)
        if mode == "inline":
            assert started == []
            return
        assert len(started) == 1
        # Woken once as it starts (rows a process that died left), not per check.
        os.set_blocking(read, False)
        assert os.read(read, 16) == b"w"
        inboxapplier.stop_applier()  # closes the pipe and waits for the child
        assert started[0].returncode == 0
        assert inboxapplier._applier._child is None
    finally:
        inboxapplier.stop_applier()
        os.close(read)
        if mode == "inline":
            os.close(write)


@pytest.mark.parametrize("nice", [0, 7])
def test_the_applier_process_takes_its_configured_niceness(
    settings: Any, monkeypatch: pytest.MonkeyPatch, nice: int
) -> None:
    settings.WEBHOOK_INBOX_APPLIER_NICE = nice
    niced: list[int] = []
    followed: list[object] = []
    monkeypatch.setattr(os, "nice", niced.append)
    monkeypatch.setattr(inboxapplier, "follow", followed.append)

    call_command("apply_inbox", "--follow")

    assert niced == ([nice] if nice else [])
    assert len(followed) == 1
