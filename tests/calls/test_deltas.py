"""The one version bump: a call's version moves by one per change, and the delta
says what it applies on top of."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

import pytest
from asgiref.sync import async_to_sync

from callbot.calls import deltas, live
from callbot.calls.availability import unavailable
from callbot.calls.models import Call
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


def stored_version(call: Call) -> int:
    return Call.objects.values_list("version", flat=True).get(pk=call.pk)


def test_bump_moves_the_version_by_one_in_memory_and_in_the_row() -> None:
    call = CallFactory(kind="group", version=3)
    lee = ParticipantFactory(call=call, is_muted=True)
    gone = ParticipantFactory(call=call, left_at=timezone.now())
    action = ActionFactory(call=call)

    delta = deltas.bump(
        call,
        call_changes={"state": "hold"},
        participants=[lee],
        left=[gone],
        actions=[action],
    )

    assert call.version == stored_version(call) == 4
    assert (delta.call_id, delta.base_version, delta.version) == (call.pk, 3, 4)
    # What is offered follows the state, so it travels with it.
    assert delta.call == {"state": "hold", "unavailable": unavailable(call)}
    assert delta.participants == [live.participant_shape(lee)]
    assert delta.left == [gone.graph_id]
    assert delta.actions == [live.action_shape(action)]
    assert delta.board == {}
    message = delta.message()
    assert json.loads(json.dumps(message)) == message
    assert (message["type"], message["base_version"], message["version"]) == (
        "call.delta",
        3,
        4,
    )


def test_bump_without_save_moves_only_the_version_in_memory() -> None:
    call = CallFactory(version=3)

    delta = deltas.bump(call, save=False, call_changes={"last_tone": "5"})

    assert (call.version, stored_version(call)) == (4, 3)
    assert (delta.base_version, delta.version, delta.call) == (3, 4, {"last_tone": "5"})
    call.save()
    assert stored_version(call) == 4


def test_bumps_chain_each_delta_on_the_one_before() -> None:
    call = CallFactory(version=0)
    changes = {"state": "hold"}

    first = deltas.bump(call, call_changes=changes)
    changes["state"] = "established"
    second = deltas.bump(call, call_changes=changes)

    assert [(d.base_version, d.version) for d in (first, second)] == [(0, 1), (1, 2)]
    assert first.call["state"] == "hold"  # a copy, not the caller's dict
    assert stored_version(call) == 2


def test_announce_fills_the_board_row_and_publishes_after_commit(
    channel_layer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    call = CallFactory()
    ActionFactory(call=call)
    channel = async_to_sync(channel_layer.new_channel)()
    for group in (live.call_group(call.pk), live.LIVE_CALLS_GROUP):
        async_to_sync(channel_layer.group_add)(group, channel)

    with django_capture_on_commit_callbacks() as callbacks:
        delta = deltas.bump(call, call_changes={"state": "hold"})
        deltas.announce([delta], {call.pk: call}, actions_changed={call.pk})
        nothing = deltas.bump(call)
        deltas.announce([nothing], {call.pk: call})
    assert len(callbacks) == 1  # an empty delta is not published
    callbacks[0]()

    received = [async_to_sync(channel_layer.receive)(channel) for _ in range(2)]
    # The board's row first (live.publish_deltas), then the call's own delta.
    assert received[1] == delta.message()
    assert received[0] == {
        "type": "calls.delta",
        "call": {
            "id": call.pk,
            "version": 1,
            "state": "hold",
            "unavailable": unavailable(call),
            "pending_actions": 1,
        },
    }
