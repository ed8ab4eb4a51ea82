"""A call rings while Redis (the broker) is away: the webhook stores it, but the
call policy's task cannot be sent. The call must still be decided, once, when
Redis is back and while it still rings."""

from __future__ import annotations

import time

import pytest

from tests.faults.ringing import reject_every_call, rejects, ring, stored_call
from tests.faults.stack import Stack
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# From Redis being back to the decision reaching Graph: the worker's and beat's
# broker reconnect (2 s, then 4 s backoff) and beat's one-second sweep.
DECISION_BOUND_SECONDS = 12


def test_a_call_ringing_while_redis_is_away_is_decided_once_when_it_is_back(
    stack: Stack,
) -> None:
    reject_every_call(stack)
    web = stack.start_web()
    stack.start_worker(concurrency=2)
    stack.start_beat()

    assert stack.redis is not None
    stack.redis.stop()
    graph_id = ring(stack)
    call = stored_call(stack, graph_id)
    assert call["state"] == "incoming"
    # Celery retries a publish for a while: Redis stays away until it gave up.
    try:
        wait_until(
            lambda: "will be handled when the broker is back" in web.output(),
            timeout=30,
        )
    except AssertionError:
        raise AssertionError(f"the task was not refused\n{stack.logs()}") from None
    stack.redis.restart()

    try:
        wait_until(
            lambda: rejects(stack, graph_id),
            timeout=DECISION_BOUND_SECONDS,
            interval=0.1,
        )
    except AssertionError:
        raise AssertionError(
            f"the call was not decided after Redis came back\n{stack.logs()}"
        ) from None
    # Once: the sweep's next ticks and any late task find it decided.
    time.sleep(3)
    assert len(rejects(stack, graph_id)) == 1
    actions = stack.rows(
        "SELECT kind, status FROM calls_action WHERE call_id = %s", call["id"]
    )
    assert actions == [{"kind": "reject", "status": "completed"}], actions
    assert stack.rows("SELECT call_id FROM ivr_unsentpolicy") == []
