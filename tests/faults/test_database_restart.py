"""PostgreSQL restarts under a running Callbot: the worker must recover by itself.

In production a PostgreSQL restart left the worker failing every task on its closed
connection (actions, IVR timeouts, keepAlives, scheduled joins) until someone
restarted it, while the webhook and the pages reconnected.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.faults.stack import ANA, LEE, RAVI, Stack
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# From PostgreSQL accepting connections again to an action being completed.
RECOVERY_BOUND_SECONDS = 10


def test_actions_complete_after_postgresql_restarts_without_restarting_the_worker(
    stack: Stack,
) -> None:
    stack.start_web()
    worker = stack.start_worker()
    bob = stack.supervisor()
    call_id, people = stack.bot_in_meeting(bob, [ANA, LEE, RAVI])
    page = stack.live_client(bob)
    page.watch_call(call_id)
    before = page.act_until_accepted("mute_participant", call_id, people["Ana"])
    stack.wait_actions([before])

    # One action asked for just before the outage and taken by the worker during
    # it: the worker is stalled while it is asked for, and resumes once
    # PostgreSQL is down.
    pause_between_transactions(stack, worker)
    queued = page.act_until_accepted("mute_participant", call_id, people["Lee"])
    stack.pg.stop()
    worker.resume()
    wait_until(
        lambda: re.search(r"OperationalError|InterfaceError", worker.output()),
        timeout=10,
    )
    stack.pg.start()

    # The page may be reconnecting: its socket closes when a read fails on the
    # stopped database.
    new = page.act_until_accepted("mute_participant", call_id, people["Ravi"])

    stack.wait_actions([queued, new], timeout=RECOVERY_BOUND_SECONDS)
    assert worker.alive
    page.wait(
        lambda: all(
            (page.action(call_id, i) or {}).get("status") == "completed"
            for i in (queued, new)
        )
    )
    wait_until(
        lambda: (
            stack.rows(
                "SELECT count(*) AS n FROM calls_participant "
                "WHERE call_id = %s AND is_muted AND NOT is_bot",
                call_id,
            )[0]["n"]
            == 3
        )
    )
    page.close()


def pause_between_transactions(stack: Any, worker: Any) -> None:
    """Stall the worker where it holds no transaction: stalled inside one (beat's
    sweep, the last action's outcome) it would keep its row locks, and the next
    request for the same call would wait for them, not for the outage."""
    busy = (
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state <> 'idle'"
    )
    for _ in range(200):
        worker.pause()
        if stack.rows(busy)[0]["n"] == 0:
            return
        worker.resume()
        time.sleep(0.05)
    raise AssertionError("the worker never paused between transactions")
