"""A call rings while Redis (the broker) is away: the webhook stores it, but the
call policy's task cannot be sent. The call must still be decided, once, when
Redis is back and while it still rings."""

from __future__ import annotations

import time

import pytest

from tests.faults.stack import Stack, manage
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# Graph ends a call nobody answered after about 15 s; the emulator is given more
# so that a late decision shows as late, not as a call that ended undecided.
RINGING_SECONDS = 40
# From Redis being back to the decision reaching Graph: the worker's and beat's
# broker reconnect (2 s, then 4 s backoff) and beat's one-second sweep.
DECISION_BOUND_SECONDS = 12


def test_a_call_ringing_while_redis_is_away_is_decided_once_when_it_is_back(
    stack: Stack,
) -> None:
    manage(
        stack.environment(),
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; CallPolicy.objects.create("
        "name='busy', match='default', action='reject', reject_reason='busy')",
    )
    web = stack.start_web()
    stack.start_worker(concurrency=2)
    stack.start_beat()
    stack.emulator.control("PATCH", "/config", {"answerTimeout": RINGING_SECONDS})

    assert stack.redis is not None
    stack.redis.stop()
    graph_id = stack.emulator.control(
        "POST", "/calls/incoming", {"from": {"phone": "+14255550123"}}
    )["callId"]
    try:
        call = wait_until(
            lambda: next(
                iter(
                    stack.rows(
                        "SELECT id, state FROM calls_call WHERE graph_id = %s",
                        graph_id,
                    )
                ),
                None,
            ),
            timeout=20,
        )
    except AssertionError:
        raise AssertionError(
            f"the ringing call was not stored\n{stack.logs()}"
        ) from None
    assert call["state"] == "incoming"
    # Celery retries a publish for a while: Redis stays away until it gave up.
    try:
        wait_until(lambda: "IVR could not handle activity" in web.output(), timeout=30)
    except AssertionError:
        raise AssertionError(f"the task was not refused\n{stack.logs()}") from None
    stack.redis.restart()

    def rejects() -> list[dict[str, object]]:
        return [
            r
            for r in stack.graph_requests()
            if r["method"] == "POST" and r["path"].endswith(f"/{graph_id}/reject")
        ]

    try:
        wait_until(rejects, timeout=DECISION_BOUND_SECONDS, interval=0.1)
    except AssertionError:
        raise AssertionError(
            f"the call was not decided after Redis came back\n{stack.logs()}"
        ) from None
    # Once: the sweep's next ticks and any late task find it decided.
    time.sleep(3)
    assert len(rejects()) == 1
    actions = stack.rows(
        "SELECT kind, status FROM calls_action WHERE call_id = %s", call["id"]
    )
    assert actions == [{"kind": "reject", "status": "completed"}], actions
    assert stack.rows("SELECT call_id FROM ivr_unsentpolicy") == []
