"""The webhook while its database is away: Graph is told to deliver again (503 JSON
with Retry-After), nothing of the batch is kept, and the redelivered batch is
applied exactly once."""

from __future__ import annotations

import json
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


def answered_call_batch() -> bytes:
    """Three notifications of one call: it rings, is set up, is established."""
    values: list[dict[str, Any]] = []
    for name in ("incoming_p2p_call", "call_establishing", "call_established"):
        values += json.loads((FIXTURES / f"{name}.json").read_text())["value"]
    body = {"@odata.type": "#microsoft.graph.commsNotifications", "value": values}
    return json.dumps(body).encode()


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


def assert_applied_once_on_redelivery(
    stack: Stack, body: bytes, message_id: str
) -> None:
    again = deliver(stack, body, message_id)
    assert again.status_code == 202, again.text[:300]
    assert again.json() == {"stored": 3, "duplicates": 0, "quarantined": 0}
    once_more = deliver(stack, body, message_id)
    assert once_more.json() == {"stored": 0, "duplicates": 3, "quarantined": 0}
    assert stored(stack) == (1, 3)
    state = stack.rows("SELECT state FROM calls_call WHERE graph_id = %s", CALL_ID)
    assert state == [{"state": "established"}]


def test_a_batch_arriving_while_the_database_is_stopped_is_refused_with_503_and_applied_once_later(
    stack: Stack,
) -> None:
    stack.start_web()
    body, message_id = answered_call_batch(), str(uuid.uuid4())
    stack.pg.stop()

    answer = deliver(stack, body, message_id)

    assert_asks_for_redelivery(answer)
    stack.pg.start()
    assert stored(stack) == (0, 0)
    assert_applied_once_on_redelivery(stack, body, message_id)


def test_a_batch_cut_off_by_the_database_mid_transaction_leaves_nothing_behind(
    stack: Stack,
) -> None:
    """The webhook's connection dies after it wrote the call row and before it
    stored the notifications: the transaction rolls back whole."""
    stack.start_web()
    body, message_id = answered_call_batch(), str(uuid.uuid4())
    url = stack.pg.url(stack.database)
    answers: list[httpx.Response] = []
    with (
        psycopg.connect(url) as blocker,
        psycopg.connect(url, autocommit=True) as admin,
    ):
        # Ingest creates the call, then reads the notification log: make it wait there.
        blocker.execute("LOCK TABLE calls_callevent IN ACCESS EXCLUSIVE MODE")
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
    assert_applied_once_on_redelivery(stack, body, message_id)


def test_the_platform_delivers_again_after_the_outage_and_the_call_is_stored_once(
    stack: Stack,
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
    events = stack.rows(
        "SELECT e.change_type FROM calls_callevent e "
        "JOIN calls_call c ON c.id = e.call_id WHERE c.graph_id = %s",
        call_id,
    )
    assert [e["change_type"] for e in events] == ["created"]
