"""A call rings while no worker is up; its policy task waits in Redis, and Redis
restarts (it keeps nothing on disk) before a worker takes it. Nothing wrote the
call down, yet it must still be decided, once, while it rings.

Two things may decide it here: the worker's check of every live call when it
starts (``reconcile_silent_calls``) and beat's sweep of calls ringing undecided
(``ivr/unsent.py``), the one left when the workers were up but busy and Redis
lost their backlog (``tests/ivr/test_unsent_policy.py``)."""

from __future__ import annotations

import time

import pytest
import redis

from tests.faults.ringing import reject_every_call, rejects, ring, stored_call
from tests.faults.stack import Stack
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# From the worker starting to the decision reaching Graph: the worker's start,
# beat's one-second sweep, and the call's grace (IVR_POLICY_LOST_AFTER_SECONDS,
# 3 s, counted from the ring, mostly spent before the worker starts).
DECISION_BOUND_SECONDS = 20


def test_a_call_whose_policy_task_redis_lost_is_decided_once(stack: Stack) -> None:
    reject_every_call(stack)
    stack.start_web()
    stack.start_beat()

    graph_id = ring(stack)
    call = stored_call(stack, graph_id)
    assert call["state"] == "incoming"
    # The task was accepted (it waits in the queue, so nothing wrote the call
    # down); then Redis forgets it.
    assert stack.redis is not None
    queue = redis.Redis.from_url(stack.redis.url())
    try:
        wait_until(lambda: queue.llen("faults"), timeout=10, interval=0.05)
    finally:
        queue.close()
    assert stack.rows("SELECT call_id FROM ivr_unsentpolicy") == []
    stack.redis.restart()
    stack.start_worker(concurrency=2)

    try:
        wait_until(
            lambda: rejects(stack, graph_id),
            timeout=DECISION_BOUND_SECONDS,
            interval=0.1,
        )
    except AssertionError:
        raise AssertionError(
            f"the call whose task was lost was not decided\n{stack.logs()}"
        ) from None
    time.sleep(3)
    assert len(rejects(stack, graph_id)) == 1
    actions = stack.rows(
        "SELECT kind, status FROM calls_action WHERE call_id = %s", call["id"]
    )
    assert actions == [{"kind": "reject", "status": "completed"}], actions
