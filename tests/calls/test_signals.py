"""The call_activity signal: what ingest announces, after commit, for the bot to act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from callbot.calls import enqueue
from callbot.calls.callstate import tone_key
from callbot.calls.ingest import apply_notifications
from callbot.calls.models import Call, Recording
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


# --- a redelivered batch: what its first delivery left for after its commit -------
def test_redelivered_ringing_call_is_announced_as_created_again(
    announced: list[CallActivity],
) -> None:
    # The first delivery committed and its webhook died before sending this.
    ingest(load_fixture("incoming_p2p_call.json"), message_id="m1")
    announced.clear()

    ingest(load_fixture("incoming_p2p_call.json"), message_id="m1")

    [activity] = announced
    assert activity.created
    assert activity.state == "incoming"
    assert (activity.tones, activity.state_changed) == ((), False)


@pytest.mark.parametrize("status", ["queued", "completed", "failed"])
def test_redelivered_call_already_decided_is_not_announced(
    announced: list[CallActivity], status: str
) -> None:
    ingest(load_fixture("incoming_p2p_call.json"), message_id="m1")
    ActionFactory(call=Call.objects.get(graph_id=P2P), kind="reject", status=status)
    announced.clear()

    ingest(load_fixture("incoming_p2p_call.json"), message_id="m1")

    assert announced == []


def test_redelivered_tones_are_not_announced_again(
    announced: list[CallActivity],
) -> None:
    ingest(load_fixture("incoming_p2p_call.json"))
    ingest(load_fixture("call_established.json"))
    ingest(load_fixture("tone_received.json"), message_id="t1")
    announced.clear()

    ingest(load_fixture("tone_received.json"), message_id="t1")

    assert announced == []


def _recorded(call: Call) -> tuple[dict[str, Any], Any]:
    operation = load_fixture("operation_completed.json")
    data = operation["value"][0]["resourceData"]
    data["@odata.type"] = "#microsoft.graph.recordOperation"
    data["recordingLocation"] = "https://media.example.net/recordings/7f3a"
    data["recordingAccessToken"] = "rec-token"
    action = ActionFactory(
        call=call,
        kind="record_response",
        status="sent",
        operation_id=data["id"],
        operation_key=normalise_id(data["id"]),
    )
    return operation, action


def test_redelivered_recording_is_fetched_again_until_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, tuple[Any, ...]]] = []
    monkeypatch.setattr(
        enqueue, "send", lambda name, *args: sent.append((name, args)) or True
    )
    ingest(load_fixture("incoming_p2p_call.json"))
    operation, action = _recorded(Call.objects.get(graph_id=P2P))
    fetch = (
        enqueue.FETCH_RECORDING,
        (action.pk, "https://media.example.net/recordings/7f3a", "rec-token"),
    )

    ingest(operation, message_id="op")
    ingest(operation, message_id="op")  # the first fetch died with its webhook
    assert [s for s in sent if s[0] == enqueue.FETCH_RECORDING] == [fetch, fetch]

    Recording.objects.create(action=action, call=action.call, size=1, audio="a.wav")
    ingest(operation, message_id="op")
    assert [s for s in sent if s[0] == enqueue.FETCH_RECORDING] == [fetch, fetch]
