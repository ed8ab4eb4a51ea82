"""A worker SIGKILLed while a batch of actions is in flight to Graph.

Tasks are acknowledged late, so Redis hands the dead worker's messages to another
worker; each action's claim (lease) lapses and the next attempt looks at Graph (or
at what Graph told the webhook) before sending again. Nothing may be lost, and no
request that cannot be repeated safely may reach Graph twice: in production a
meeting join in flight when its worker died made the bot join the meeting twice;
before the same looks were added for them, a call or group call in flight was
placed twice, a transfer was asked for again (and failed 409) and a meeting was
created twice.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.faults.stack import ANA, LEE, MEI, RAVI, Stack, manage
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# Graph holds every request of the batch this long; the worker dies meanwhile.
GRAPH_DELAY_MS = 2500


def changes_per_request(stack: Stack) -> Counter[tuple[str, str, str]]:
    """How often each request that changes something at Graph (not a GET, nor a
    ``createOrGet`` answered 200 with the meeting it made before) succeeded, by
    (method, path, client-request-id)."""
    return Counter(
        (r["method"], r["path"], r["clientRequestId"])
        for r in stack.graph_requests()
        if r["method"] != "GET"
        and 200 <= r["status"] < 300
        and not (r["path"].endswith("/createOrGet") and r["status"] == 200)
    )


def shorter_timers(stack: Stack) -> None:
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


# The bot asks for actions as its IVR and schedule do (``services.request_action``
# with no person), in a process of its own against the stack's database.
_REQUEST_ACTIONS = """
import json, sys
from callbot.calls import services
asked = json.load(sys.stdin)
print(json.dumps([
    services.request_action(a["kind"], actor=None, call=a.get("call"),
                            params=a.get("params")).pk
    for a in asked
]))
"""


def bot_requests(stack: Stack, *asked: dict[str, Any]) -> list[int]:
    """Queue actions as the bot; their ids."""
    out = manage(
        stack.environment(), "shell", "-c", _REQUEST_ACTIONS, stdin=json.dumps(asked)
    )
    ids: list[int] = json.loads(out.strip().splitlines()[-1])
    return ids


def user(person: dict[str, Any]) -> dict[str, str]:
    """A call target as the bot stores it (``params.clean_target``)."""
    return {"user_id": person["user"]["id"]}


def test_a_worker_killed_mid_batch_loses_no_action_and_repeats_no_join(
    stack: Stack,
) -> None:
    shorter_timers(stack)
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


def test_a_worker_killed_with_calls_a_transfer_and_a_meeting_in_flight_repeats_none(
    stack: Stack,
) -> None:
    """A call placed, a group call placed, a transfer and a meeting's creation are
    all held by Graph when their worker dies. Graph carries each out; the next
    attempts find what the dead one did instead of doing it again."""
    shorter_timers(stack)
    stack.start_web()
    # The transfer stays under way past the claim's lapse, so its next attempt
    # finds it transferring (default 0.1 s).
    stack.emulator.control("PATCH", "/config", {"transferDelay": 6})
    first = stack.start_worker(concurrency=4)
    stack.start_beat()
    [placed] = bot_requests(
        stack, {"kind": "place_call", "params": {"target": user(LEE)}}
    )
    stack.wait_actions([placed])
    to_transfer = stack.action(placed)["call_id"]

    stack.emulator.control(
        "POST", "/faults", {"graph_slow": {"count": 4, "delay_ms": GRAPH_DELAY_MS}}
    )
    asked = bot_requests(
        stack,
        {"kind": "transfer", "call": to_transfer, "params": {"target": user(RAVI)}},
        {"kind": "place_call", "params": {"target": user(MEI)}},
        {
            "kind": "place_group_call",
            "params": {"targets": [user(ANA), user(LEE)], "subject": "Ops"},
        },
        {"kind": "create_online_meeting", "params": {"subject": "Review"}},
    )
    wait_until(
        lambda: (
            stack.emulator.control("GET", "/faults")["applied"].get("graph_slow") == 4
        ),
        timeout=15,
    )
    first.kill()

    stack.start_worker(concurrency=4)

    recovered = stack.wait_actions(asked, timeout=40)
    print(f"all four settled {recovered:.1f} s after the kill")  # noqa: T201
    actions = {stack.action(i)["kind"]: stack.action(i) for i in asked}
    sent = changes_per_request(stack)
    twice = {request: n for request, n in sent.items() if n > 1}
    assert twice == {}, f"sent to Graph more than once: {twice}"
    # Each reached Graph once; the retries only looked (or, for the meeting,
    # asked createOrGet under the same key and got the same meeting).
    posts = Counter(
        (r["path"].rsplit("/", 1)[-1], r["status"])
        for r in stack.graph_requests()
        if r["method"] == "POST"
        and r["clientRequestId"]
        in {str(a["client_request_id"]) for a in actions.values()}
    )
    assert posts == Counter(
        {("transfer", 202): 1, ("calls", 201): 2, ("createOrGet", 201): 1}
    ) + Counter({("createOrGet", 200): posts[("createOrGet", 200)]})
    assert all(a["attempts"] >= 2 for a in actions.values())
    looked = {
        r["clientRequestId"] for r in stack.graph_requests() if r["method"] == "GET"
    }
    assert {
        str(actions[k]["client_request_id"])
        for k in ("transfer", "place_call", "place_group_call")
    } <= looked
    assert len(stack.emulator.control("GET", "/meetings")["value"]) == 1
    assert len(stack.rows("SELECT id FROM calls_meeting")) == 1
    # Each placed call is linked to its action, to whom it calls.
    ours = stack.rows(
        "SELECT c.kind, c.targets, a.kind AS action FROM calls_call c "
        "JOIN calls_action a ON a.call_id = c.id "
        "WHERE a.id = ANY(%s) AND a.kind LIKE 'place%%'",
        asked,
    )
    assert sorted((r["action"], r["kind"], len(r["targets"])) for r in ours) == [
        ("place_call", "peer_to_peer", 1),
        ("place_group_call", "group", 2),
    ]
    theirs = stack.emulator.control("GET", "/calls?ended=1")["value"]
    assert len([c for c in theirs if c["direction"] == "outgoing"]) == 3
