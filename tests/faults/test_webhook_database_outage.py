"""The webhook while its database is away: Graph is told to deliver again (503 JSON
with Retry-After), nothing of the batch is kept, and the redelivered batch is
applied exactly once.

Each test runs both ways (``webhook_apply``): inline, the batch is applied before
the 202; deferred (the default with PostgreSQL and Redis), it is stored as one row
before the 202 and applied by the web process's applier after, so the test waits
for the inbox to empty before it reads what was applied."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.faults.stack import ANA, Stack
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "graph"
CALL_ID = "611f0b00-3a1c-4d2e-9b8f-7a6c5d4e3f21"


def batch_of(*names: str) -> bytes:
    values: list[dict[str, Any]] = []
    for name in names:
        values += json.loads((FIXTURES / f"{name}.json").read_text())["value"]
    body = {"@odata.type": "#microsoft.graph.commsNotifications", "value": values}
    return json.dumps(body).encode()


def answered_call_batch() -> bytes:
    """Three notifications of one call: it rings, is set up, is established."""
    return batch_of("incoming_p2p_call", "call_establishing", "call_established")


def ended_call_batch() -> bytes:
    """The same call's end."""
    return batch_of("call_terminated")


def deliver(stack: Stack, body: bytes, message_id: str) -> httpx.Response:
    """POST a batch as the calling platform does: signed, with its message id."""
    token = stack.emulator.emulator.identity.notification_token()
    return httpx.post(
        stack.webhook,
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-Microsoft-Skype-Message-ID": message_id,
        },
        timeout=30,
    )


def stored(stack: Stack) -> tuple[int, int]:
    """(calls, notifications) stored for the batch's call."""
    calls = stack.rows("SELECT id FROM calls_call WHERE graph_id = %s", CALL_ID)
    events = stack.rows(
        "SELECT e.id FROM calls_callevent e JOIN calls_call c ON c.id = e.call_id "
        "WHERE c.graph_id = %s",
        CALL_ID,
    )
    return len(calls), len(events)


def assert_asks_for_redelivery(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0


def accepted(mode: str, stored: int, duplicates: int) -> dict[str, int]:
    """The 202's body for a batch of ``stored + duplicates`` notifications: what
    became of them inline, how many were accepted deferred (decided later)."""
    if mode == "deferred":
        return {"accepted": stored + duplicates}
    return {"stored": stored, "duplicates": duplicates, "quarantined": 0}


def assert_applied_once_on_redelivery(
    stack: Stack, body: bytes, message_id: str, mode: str
) -> None:
    again = deliver(stack, body, message_id)
    assert again.status_code == 202, again.text[:300]
    assert again.json() == accepted(mode, stored=3, duplicates=0)
    stack.wait_inbox_applied()
    assert stored(stack) == (1, 3)
    once_more = deliver(stack, body, message_id)
    assert once_more.json() == accepted(mode, stored=0, duplicates=3)
    stack.wait_inbox_applied()
    assert stored(stack) == (1, 3)
    state = stack.rows("SELECT state FROM calls_call WHERE graph_id = %s", CALL_ID)
    assert state == [{"state": "established"}]


def test_a_batch_arriving_while_the_database_is_stopped_is_refused_with_503_and_applied_once_later(
    stack: Stack, webhook_apply: str
) -> None:
    stack.start_web()
    body, message_id = answered_call_batch(), str(uuid.uuid4())
    stack.pg.stop()

    answer = deliver(stack, body, message_id)

    assert_asks_for_redelivery(answer)
    stack.pg.start()
    assert stored(stack) == (0, 0)
    assert stack.inbox_rows() == 0
    assert_applied_once_on_redelivery(stack, body, message_id, webhook_apply)


# Where the request's one transaction writes (and waits on the lock): inline,
# ingest creates the call, then reads the notification log; deferred, the
# request's only statement is the inbox row's INSERT.
_HELD_AT = {"inline": "calls_callevent", "deferred": "calls_inboxbatch"}


def test_a_batch_cut_off_by_the_database_mid_transaction_leaves_nothing_behind(
    stack: Stack, webhook_apply: str
) -> None:
    """The webhook's connection dies inside the request's transaction (inline:
    after it wrote the call row and before it stored the notifications;
    deferred: in the inbox row's INSERT): it rolls back whole."""
    stack.start_web()
    body, message_id = answered_call_batch(), str(uuid.uuid4())
    url = stack.pg.url(stack.database)
    answers: list[httpx.Response] = []
    with (
        psycopg.connect(url) as blocker,
        psycopg.connect(url, autocommit=True) as admin,
    ):
        blocker.execute(
            f"LOCK TABLE {_HELD_AT[webhook_apply]} IN ACCESS EXCLUSIVE MODE"
        )
        posting = threading.Thread(
            target=lambda: answers.append(deliver(stack, body, message_id))
        )
        posting.start()
        waiting = wait_until(
            lambda: admin.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchall(),
            timeout=10,
        )
        admin.execute("SELECT pg_terminate_backend(%s)", waiting[0])
        posting.join(timeout=30)
        blocker.rollback()

    assert_asks_for_redelivery(answers[0])
    assert stored(stack) == (0, 0)
    assert stack.inbox_rows() == 0
    assert_applied_once_on_redelivery(stack, body, message_id, webhook_apply)


def test_the_platform_delivers_again_after_the_outage_and_the_call_is_stored_once(
    stack: Stack, webhook_apply: str
) -> None:
    """The emulator retries a POST answered with a 5xx (same body, same message
    id), as the calling platform does: the call rings while the database is down
    and is on the board once the database is back."""
    stack.start_web()
    stack.pg.stop()
    emulator = stack.emulator

    call_id = emulator.control("POST", "/calls/incoming", {"from": ANA})["callId"]

    wait_until(
        lambda: emulator.control("GET", "/stats")["notifications"]["statusCounts"].get(
            "503"
        ),
        timeout=10,
    )
    stack.pg.start()
    emulator.wait_idle(timeout=10)
    delivery = emulator.control("GET", "/stats")["notifications"]
    assert delivery["failed"] == 0
    assert "500" not in delivery["statusCounts"]
    stack.wait_inbox_applied()
    events = stack.rows(
        "SELECT e.change_type FROM calls_callevent e "
        "JOIN calls_call c ON c.id = e.call_id WHERE c.graph_id = %s",
        call_id,
    )
    assert [e["change_type"] for e in events] == ["created"]


def test_batches_stored_before_postgresql_restarts_are_applied_once_after(
    stack: Stack,
) -> None:
    """Deferred: batches answered 202 and waiting in the inbox (their applier
    stopped, its connection then cut by the restart) when PostgreSQL restarts; the applier meets the outage, keeps the
    rows, and applies each once when the database is back, on its own timer
    (the redelivery as duplicates)."""
    stack.settings["WEBHOOK_INBOX_SWEEP_SECONDS"] = "1"
    web = stack.start_web()
    body = answered_call_batch()
    first = deliver(stack, body, str(uuid.uuid4()))
    assert first.json() == {"accepted": 3}
    stack.wait_inbox_applied()
    [applier] = web.children("apply_inbox")
    os.kill(applier, signal.SIGSTOP)
    try:
        ended = deliver(stack, ended_call_batch(), str(uuid.uuid4()))
        again = deliver(stack, body, str(uuid.uuid4()))  # a redelivery, new id
        assert (ended.status_code, again.status_code) == (202, 202)
        assert stack.inbox_rows() == 2
        # A planned restart: the throwaway cluster runs synchronous_commit=off,
        # so a crash (``immediate``) may lose commits it had acknowledged,
        # which a production server (synchronous_commit=on) does not.
        stack.pg.restart()
    finally:
        os.kill(applier, signal.SIGCONT)

    stack.wait_inbox_applied(timeout=30)
    assert stored(stack) == (1, 4)
    state = stack.rows("SELECT state FROM calls_call WHERE graph_id = %s", CALL_ID)
    assert state == [{"state": "terminated"}]
    assert web.children("apply_inbox") == [applier]  # it outlived the outage
