"""A caller in an IVR menu presses a key while Redis (the broker) is away: the
webhook stores the tone, but its ``handle_call_activity`` task cannot be sent.
The key must still move the flow, once, when Redis is back: not be lost, and
not be overtaken by the menu's timeout."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.faults.stack import Stack, manage
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.faults]

# From Redis being back to the key's hang-up reaching Graph: the worker's and
# beat's broker reconnect (2 s, then 4 s backoff) and beat's one-second sweep.
HANDLED_BOUND_SECONDS = 12

STEPS: list[dict[str, Any]] = [
    {
        "id": "menu",
        "type": "collect",
        "prompt": "menu",
        # Longer than the outage: pressed in time, the key must decide.
        "timeout": 60,
        "branches": {"0": "bye"},
        "default": "no-input",
        "on_timeout": "no-input",
    },
    {"id": "no-input", "type": "play", "prompt": "no-input", "next": "bye"},
    {"id": "bye", "type": "hang_up"},
]


def answer_into_the_menu(stack: Stack) -> None:
    manage(
        stack.environment(),
        "shell",
        "-c",
        "import json; from callbot.ivr.models import CallPolicy, IvrFlow; "
        "flow = IvrFlow.objects.create(name='menu', start='menu', "
        f"steps=json.loads({json.dumps(STEPS)!r})); "
        "CallPolicy.objects.create(name='ivr', match='default', "
        "action='answer', flow=flow)",
    )


def session(stack: Stack, graph_id: str) -> dict[str, Any] | None:
    found = stack.rows(
        "SELECT s.call_id, s.current_step, s.phase, s.status, s.path, s.held "
        "FROM ivr_ivrsession s JOIN calls_call c ON c.id = s.call_id "
        "WHERE c.graph_id = %s",
        graph_id,
    )
    return found[0] if found else None


def hang_ups(stack: Stack, graph_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in stack.graph_requests()
        if r["method"] == "DELETE" and r["path"].endswith(f"/calls/{graph_id}")
    ]


def test_a_key_pressed_while_redis_is_away_is_handled_once_when_it_is_back(
    stack: Stack,
) -> None:
    answer_into_the_menu(stack)
    web = stack.start_web()
    stack.start_worker(concurrency=2)
    stack.start_beat()

    graph_id = str(
        stack.emulator.control(
            "POST", "/calls/incoming", {"from": {"phone": "+14255550123"}}
        )["callId"]
    )
    try:
        listening = wait_until(
            lambda: (s := session(stack, graph_id)) and s["phase"] == "collecting",
            timeout=30,
            interval=0.1,
        )
    except AssertionError:
        raise AssertionError(f"the menu was not reached\n{stack.logs()}") from None
    assert listening

    assert stack.redis is not None
    stack.redis.stop()
    stack.emulator.control("POST", f"/calls/{graph_id}/tones", {"keys": "0"})
    # Celery retries a publish for a while: Redis stays away until it gave up.
    try:
        wait_until(
            lambda: "will be handled when the broker is back" in web.output(),
            timeout=30,
        )
    except AssertionError:
        raise AssertionError(
            f"the tone's task was not refused\n{stack.logs()}"
        ) from None
    assert "could not handle activity" not in web.output()
    held = stack.rows("SELECT call_id, activity FROM ivr_heldactivity")
    assert [row["activity"]["tones"] for row in held] == [["0"]], held
    assert not hang_ups(stack, graph_id)
    stack.redis.restart()

    try:
        wait_until(
            lambda: hang_ups(stack, graph_id),
            timeout=HANDLED_BOUND_SECONDS,
            interval=0.1,
        )
    except AssertionError:
        raise AssertionError(
            f"the key was not handled after Redis came back\n{stack.logs()}"
        ) from None
    # Once: the sweep's next ticks find nothing held.
    time.sleep(3)
    assert len(hang_ups(stack, graph_id)) == 1
    after = session(stack, graph_id)
    assert after is not None
    assert (after["path"], after["held"]) == (" menu menu:0 bye ", False), after
    assert stack.rows("SELECT id FROM ivr_heldactivity") == []
    prompts = stack.rows(
        "SELECT parameters->>'name' AS name FROM calls_action "
        "WHERE call_id = %s AND kind = 'play_prompt' ORDER BY id",
        after["call_id"],
    )
    assert [p["name"] for p in prompts] == ["menu"], prompts
