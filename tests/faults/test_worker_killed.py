"""A worker SIGKILLed while a batch of actions is in flight to Graph.

Tasks are acknowledged late, so Redis hands the dead worker's messages to another
worker; each action's claim (lease) lapses and the next attempt looks at Graph (or
at what Graph told the webhook) before sending again. Nothing may be lost, and no
request that cannot be repeated safely may reach Graph twice: in production a
meeting join in flight when its worker died made the bot join the meeting twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.faults.stack import ANA, LEE, MEI, RAVI, Stack
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# Graph holds every request of the batch this long; the worker dies meanwhile.
GRAPH_DELAY_MS = 2500


def changes_per_request(stack: Stack) -> Counter[tuple[str, str, str]]:
    """How often each request that changes something at Graph (not a GET)
    succeeded, by (method, path, client-request-id)."""
    return Counter(
        (r["method"], r["path"], r["clientRequestId"])
        for r in stack.graph_requests()
        if r["method"] != "GET" and 200 <= r["status"] < 300
    )


def test_a_worker_killed_mid_batch_loses_no_action_and_repeats_no_join(
    stack: Stack,
) -> None:
    stack.settings.update(
        # Redis hands an unacknowledged message to another worker after 2 s; a
        # claim lapses after 6 s (production: 120 s and 60 s).
        CELERY_VISIBILITY_TIMEOUT="2",
        CELERY_RESTORE_INTERVAL="1",
        ACTION_LEASE_SECONDS="6",
        # A message the dying worker had taken from Redis but not yet recorded as
        # unacknowledged is gone (kombu pops, then records): the sweep sends its
        # action again (production: after 30 s, every 15 s).
        ACTION_REQUEUE_AFTER_SECONDS="2",
        ACTION_REQUEUE_SWEEP_SECONDS="1",
    )
    stack.start_web()
    first = stack.start_worker(concurrency=4)
    stack.start_beat()
    bob = stack.supervisor()
    call_id, people = stack.bot_in_meeting(bob, [ANA, LEE, RAVI])
    page = stack.live_client(bob)
    page.watch_call(call_id)
    other = stack.meeting_with([MEI])
    other_id = bob.save_meeting(other["joinWebUrl"])

    # Graph is slow to answer the join and the first mute; the other two mutes
    # wait their turn (a call's actions reach Graph in order).
    in_flight = 2
    stack.emulator.control(
        "POST",
        "/faults",
        {"graph_slow": {"count": in_flight, "delay_ms": GRAPH_DELAY_MS}},
    )
    bob.join(other_id)
    mutes = [
        page.act_until_accepted("mute_participant", call_id, people[name])
        for name in ("Ana", "Lee", "Ravi")
    ]
    join: dict[str, Any] = wait_until(
        lambda: (
            stack.rows(
                "SELECT * FROM calls_action WHERE kind = 'join_meeting' "
                "AND parameters->>'meeting_id' = %s",
                str(other_id),
            )
            or [None]
        )[0]
    )
    # Both requests have reached Graph, which is still working on them.
    wait_until(
        lambda: (
            stack.emulator.control("GET", "/faults")["applied"].get("graph_slow")
            == in_flight
        ),
        timeout=15,
    )
    first.kill()

    stack.start_worker(concurrency=4)

    stack.wait_actions([join["id"], *mutes], timeout=40)
    sent = changes_per_request(stack)
    twice = {request: n for request, n in sent.items() if n > 1}
    assert twice == {}, f"sent to Graph more than once: {twice}"
    joins = [
        r
        for r in stack.graph_requests()
        if r["method"] == "POST"
        and r["path"].endswith("/communications/calls")
        and r["clientRequestId"] == str(join["client_request_id"])
    ]
    assert [r["status"] for r in joins] == [201]
    bot_calls = stack.rows(
        "SELECT id FROM calls_call WHERE meeting_id = %s AND state <> 'terminated'",
        other_id,
    )
    assert len(bot_calls) == 1
    page.close()
