"""Redis restarts under a running Callbot. Redis is the Celery broker and the
channel layer, and comes back empty (no persistence): it forgets queued task
messages and every websocket's group memberships.

A page must notice and catch up (its socket is closed, it reconnects and gets fresh
snapshots), and an action whose task message Redis forgot must still be performed:
``requeue_stale_actions`` (beat) sends queued actions again.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis

from tests.faults.stack import ANA, LEE, MEI, RAVI, Stack
from tests.support.emulator import wait_until
from tests.support.live_client import LiveClient

pytestmark = [pytest.mark.faults]

# The sweep's timing, shortened (production: 30 s and 15 s, so a lost action is
# sent again within 45 s).
REQUEUE_AFTER_SECONDS = 2
SWEEP_SECONDS = 1
# From Redis being back to the page showing every action completed.
RECOVERY_BOUND_SECONDS = REQUEUE_AFTER_SECONDS + SWEEP_SECONDS + 12
# How long channels_redis blocks on Redis for a websocket's next message.
CHANNEL_LAYER_BLOCKING_POP_SECONDS = 5
# How long Redis stays away in a restart: the sockets it had are closed by then.
REDIS_AWAY_SECONDS = 4


def completed_on_page(page: LiveClient, call_id: int, action_ids: list[int]) -> bool:
    return all(
        (page.action(call_id, i) or {}).get("status") == "completed" for i in action_ids
    )


def waiting_in_redis(stack: Stack, action_id: int) -> bool:
    """True if ``perform_action(action_id)`` waits in the queue's Redis list."""
    assert stack.redis is not None
    client = redis.Redis.from_url(stack.redis.url())
    for raw in client.lrange("faults", 0, -1):
        message = json.loads(raw)
        headers = message.get("headers", {})
        if headers.get("task") != "callbot.calls.perform_action":
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        if args == [action_id]:
            return True
    return False


def test_a_page_catches_up_and_no_action_is_lost_when_redis_restarts(
    stack: Stack,
) -> None:
    stack.settings.update(
        ACTION_REQUEUE_AFTER_SECONDS=str(REQUEUE_AFTER_SECONDS),
        ACTION_REQUEUE_SWEEP_SECONDS=str(SWEEP_SECONDS),
    )
    stack.start_web()
    # One thread: while it waits on a slow Graph request, the worker takes no
    # further message, so the next action's message waits in Redis.
    stack.start_worker(concurrency=1)
    stack.start_beat()
    bob = stack.supervisor()
    call_id, people = stack.bot_in_meeting(bob, [ANA, LEE, RAVI, MEI])
    page = stack.live_client(bob)
    page.watch_call(call_id)
    first = page.act_until_accepted("mute_participant", call_id, people["Ana"])
    page.wait(lambda: completed_on_page(page, call_id, [first]), timeout=20)

    # In flight across the restart: Graph takes 4 s to answer Lee's mute.
    stack.emulator.control(
        "POST", "/faults", {"graph_slow": {"count": 1, "delay_ms": 4000}}
    )
    in_flight = page.act_until_accepted("mute_participant", call_id, people["Lee"])
    wait_until(lambda: stack.action(in_flight)["attempts"] == 1, timeout=10)
    # Queued across the restart: Redis forgets its task message.
    lost = page.act_until_accepted("mute_participant", call_id, people["Ravi"])
    wait_until(lambda: waiting_in_redis(stack, lost), timeout=10)

    assert stack.redis is not None
    stack.redis.restart()

    assert not waiting_in_redis(stack, lost)
    new = page.act_until_accepted("mute_participant", call_id, people["Mei"])
    actions = [in_flight, lost, new]
    try:
        page.wait(
            lambda: completed_on_page(page, call_id, actions),
            timeout=RECOVERY_BOUND_SECONDS,
        )
    except AssertionError:
        rows = stack.rows(
            "SELECT id, status, attempts FROM calls_action WHERE id = ANY(%s)",
            actions,
        )
        raise AssertionError(
            f"page shows {[page.action(call_id, i) for i in actions]}; "
            f"database has {rows}; page connects={page.connects}\n{stack.logs()}"
        ) from None
    # The page learnt of the restart (its socket closed) and resubscribed.
    assert page.connects >= 2
    page.wait(
        lambda: (
            {
                p["name"]
                for p in page.calls[call_id].participants.values()
                if p["is_muted"]
            }
            == {"Ana", "Lee", "Ravi", "Mei"}
        )
    )
    page.close()


def test_a_quiet_page_keeps_its_socket(stack: Stack) -> None:
    """Nothing happens for longer than the channel layer's blocking pop: the
    socket stays open (a Redis read timeout shorter than that pop closed every
    idle socket every five seconds)."""
    stack.start_web()
    bob = stack.supervisor()
    page = stack.live_client(bob)
    page.subscribe(board=True)
    page.wait(lambda: any(m["type"] == "board.snapshot" for m in page.messages))

    # Nothing to wait for: the point is that nothing happens.
    time.sleep(CHANNEL_LAYER_BLOCKING_POP_SECONDS * 1.5)

    assert (page.connects, page.drops) == (1, 0)
    page.close()


def test_the_worker_outlives_redis_being_away_and_performs_actions_after(
    stack: Stack,
) -> None:
    """Redis gone for longer than a restart (a failover, a host reboot): the
    worker's consumer loses its broker and keeps trying; it must neither exit (a
    dead worker performs nothing until someone restarts it) nor lose the actions
    asked for once Redis is back."""
    stack.settings.update(
        ACTION_REQUEUE_AFTER_SECONDS=str(REQUEUE_AFTER_SECONDS),
        ACTION_REQUEUE_SWEEP_SECONDS=str(SWEEP_SECONDS),
    )
    stack.start_web()
    worker = stack.start_worker(concurrency=2)
    stack.start_beat()
    bob = stack.supervisor()
    call_id, people = stack.bot_in_meeting(bob, [ANA, LEE, RAVI])
    page = stack.live_client(bob)
    page.watch_call(call_id)
    first = page.act_until_accepted("mute_participant", call_id, people["Ana"])
    page.wait(lambda: completed_on_page(page, call_id, [first]), timeout=20)

    # In flight when Redis goes: its message is delivered and not yet
    # acknowledged, which the consumer tries to give back as it reconnects.
    stack.emulator.control(
        "POST", "/faults", {"graph_slow": {"count": 1, "delay_ms": 3000}}
    )
    in_flight = page.act_until_accepted("mute_participant", call_id, people["Lee"])
    wait_until(lambda: stack.action(in_flight)["attempts"] == 1, timeout=10)
    assert stack.redis is not None
    stack.redis.stop()
    # Long enough for the consumer to notice, give up its connection and start
    # its reconnect cycle against a broker that refuses connections.
    time.sleep(8)
    assert worker.alive, f"the worker exited while Redis was away\n{stack.logs()}"
    stack.redis.restart()

    after = page.act_until_accepted("mute_participant", call_id, people["Ravi"])
    try:
        page.wait(
            lambda: completed_on_page(page, call_id, [in_flight, after]),
            timeout=RECOVERY_BOUND_SECONDS + 10,
        )
    except AssertionError:
        raise AssertionError(
            f"worker alive={worker.alive}; actions {stack.action(in_flight)} "
            f"{stack.action(after)}\n{stack.logs()}"
        ) from None
    assert worker.alive
    page.close()


def test_the_first_reconnect_and_publish_after_a_restart_meet_no_stale_connection(
    stack: Stack,
) -> None:
    """Every Redis client of the web process and the worker holds connections
    from before the restart, which Redis closed as it went. Each is dropped at
    its first use and the command sent again on a fresh one: the page's first
    reconnect stays live (no consumer crashes on "Connection closed by server",
    which cost the page a drop and a backoff of seconds), and the worker's first
    publish after the restart reaches the page."""
    web = stack.start_web()
    # One thread: the worker publishes from one event loop, whose pooled
    # connections outlive the restart.
    worker = stack.start_worker(concurrency=1)
    bob = stack.supervisor()
    call_id, people = stack.bot_in_meeting(bob, [ANA, LEE, RAVI])
    page = stack.live_client(bob)
    page.watch_call(call_id)
    first = page.act_until_accepted("mute_participant", call_id, people["Ana"])
    page.wait(lambda: completed_on_page(page, call_id, [first]), timeout=20)

    assert stack.redis is not None
    stack.redis.stop()
    time.sleep(REDIS_AWAY_SECONDS)
    worker_log = len(worker.output())
    stack.redis.restart()
    back = time.monotonic()
    # Sockets the page opened while Redis was away crash on connecting to it;
    # from here on nothing may meet a connection from before the restart.
    web_log = len(web.output())

    # The page's first socket after the restart gets its snapshot ...
    snapshots = sum(m["type"] == "call.snapshot" for m in page.messages)
    page.wait(
        lambda: sum(m["type"] == "call.snapshot" for m in page.messages) > snapshots,
        timeout=10,
    )
    live_at = time.monotonic() - back
    drops, live_log = page.drops, len(web.output())
    # ... and stays open past its first blocking pop and presence writes.
    time.sleep(CHANNEL_LAYER_BLOCKING_POP_SECONDS + 1)
    since_back, since_live = web.output()[web_log:], web.output()[live_log:]
    assert page.drops == drops, f"the page dropped again\n{since_back}"
    assert "Exception inside application" not in since_live, since_live
    assert "Connection closed by server" not in since_back, since_back

    # The worker's first publish since the restart reaches the page.
    after = page.act_until_accepted("mute_participant", call_id, people["Lee"])
    page.wait(lambda: completed_on_page(page, call_id, [after]), timeout=10)
    assert "publishing" not in worker.output()[worker_log:], worker.output()[
        worker_log:
    ]
    assert live_at < 5, f"the page was live again {live_at:.1f} s after Redis"
    page.close()
