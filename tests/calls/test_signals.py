"""The call_activity signal: what ingest announces, after commit, for the bot to act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from callbot.calls.callstate import tone_key
from callbot.calls.ingest import apply_notifications
from callbot.calls.models import Call
from callbot.calls.signals import CallActivity, call_activity
from callbot.graph.notifications import parse_notification_batch
from callbot.graph.resources import normalise_id
from tests.conftest import load_fixture
from tests.factories import ActionFactory

pytestmark = pytest.mark.django_db(transaction=True)

P2P = "611f0b00-3a1c-4d2e-9b8f-7a6c5d4e3f21"


@pytest.fixture
def announced() -> Iterator[list[CallActivity]]:
    seen: list[CallActivity] = []

    def receiver(sender: Any, activity: list[CallActivity], **kwargs: Any) -> None:
        seen.extend(activity)

    call_activity.connect(receiver, dispatch_uid="test-announced")
    yield seen
    call_activity.disconnect(dispatch_uid="test-announced")


def ingest(body: dict[str, Any], message_id: str = "") -> None:
    apply_notifications(
        parse_notification_batch(json.dumps(body)), message_id=message_id
    )


def test_new_incoming_call_is_announced_as_created(
    announced: list[CallActivity],
) -> None:
    ingest(load_fixture("incoming_p2p_call.json"))

    [activity] = announced
    call = Call.objects.get(graph_id=P2P)
    assert activity == CallActivity(
        call_id=call.pk,
        graph_id=P2P,
        created=True,
        direction="incoming",
        kind="peer_to_peer",
        state="incoming",
        state_changed=True,
        tones=(),
        finished_actions=(),
        terminated=False,
    )


def test_tones_are_announced_once_in_order(announced: list[CallActivity]) -> None:
    ingest(load_fixture("incoming_p2p_call.json"))
    tone = load_fixture("tone_received.json")
    first = tone["value"][0]
    second = json.loads(json.dumps(first))
    second["resourceData"]["toneInfo"].update(
        tone="tonePound",
        sequenceId=first["resourceData"]["toneInfo"]["sequenceId"] + 1,
    )
    tone["value"] = [first, second]
    announced.clear()

    ingest(tone, message_id="t1")
    ingest(tone, message_id="t1")  # redelivered: nothing new to announce

    [activity] = announced
    assert activity.tones == (tone_key(first["resourceData"]["toneInfo"]["tone"]), "#")
    assert not activity.created


def test_finished_action_and_termination_are_announced(
    announced: list[CallActivity],
) -> None:
    ingest(load_fixture("incoming_p2p_call.json"))
    call = Call.objects.get(graph_id=P2P)
    operation = load_fixture("operation_completed.json")
    op = operation["value"][0]
    action = ActionFactory(
        call=call,
        kind="play_prompt",
        status="sent",
        operation_id=op["resourceData"]["id"],
        operation_key=normalise_id(op["resourceData"]["id"]),
    )
    terminated = load_fixture("call_terminated.json")
    for item in terminated["value"]:
        item["resourceUrl"] = f"/communications/calls/{P2P}"
    announced.clear()

    ingest({"value": [op, *terminated["value"]]})

    [activity] = announced
    assert activity.finished_actions == ((action.pk, "play_prompt", "completed"),)
    assert activity.terminated
    assert activity.state == "terminated"


@pytest.mark.parametrize(
    ("tone", "key"),
    [
        ("tone0", "0"),
        ("tone9", "9"),
        ("toneStar", "*"),
        ("tonePound", "#"),
        ("toneA", "a"),
    ],
)
def test_tone_names_map_to_keys(tone: str, key: str) -> None:
    assert tone_key(tone) == key


def test_failing_receiver_does_not_break_ingest(announced: list[CallActivity]) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    call_activity.connect(broken, dispatch_uid="test-broken")
    try:
        ingest(load_fixture("incoming_p2p_call.json"))
    finally:
        call_activity.disconnect(dispatch_uid="test-broken")

    assert Call.objects.filter(graph_id=P2P).exists()
    assert len(announced) == 1
