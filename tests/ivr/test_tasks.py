"""The signal receiver's filter and the task's message: what crosses the broker."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from callbot.calls.signals import CallActivity
from callbot.ivr import tasks
from callbot.ivr.receivers import is_relevant


def activity(**changes: Any) -> CallActivity:
    base = CallActivity(
        call_id=1,
        graph_id="g",
        created=False,
        direction="incoming",
        kind="peer_to_peer",
        state="established",
        state_changed=False,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "relevant"),
    [
        ({"created": True, "state": "incoming"}, True),
        ({"created": True, "state": "incoming", "direction": "outgoing"}, False),
        ({"state_changed": True}, True),
        ({"state_changed": True, "state": "hold"}, False),
        ({"tones": ("0",)}, True),
        ({"finished_actions": ((5, "play_prompt", "completed"),)}, True),
        ({"terminated": True, "state": "terminated"}, True),
        ({}, False),
    ],
)
def test_only_activity_the_ivr_acts_on_enqueues_a_task(
    changes: dict[str, Any], relevant: bool
) -> None:
    assert is_relevant(activity(**changes)) is relevant


def test_the_task_takes_activity_after_a_json_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        tasks.runtime, "apply_policy", lambda call_id: seen.update(policy=call_id)
    )
    monkeypatch.setattr(
        tasks.runtime,
        "handle_activity",
        lambda call_id, **kw: seen.update(call_id=call_id, **kw),
    )
    item = activity(
        created=True,
        state="incoming",
        tones=("1", "#"),
        finished_actions=((5, "play_prompt", "completed"),),
    )
    message = json.loads(json.dumps(dataclasses.asdict(item)))

    tasks.handle_call_activity(message)

    assert seen == {
        "policy": 1,
        "call_id": 1,
        "state": "incoming",
        "state_changed": False,
        "tones": ("1", "#"),
        "finished_actions": [(5, "play_prompt", "completed")],
        "terminated": False,
    }
