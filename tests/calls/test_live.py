"""Deltas reach the channel layer after commit, as JSON, on both layers."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from django.db import connection

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers

from callbot.calls import live
from callbot.calls.ingest import apply_notifications
from callbot.calls.live import LIVE_CALLS_GROUP, call_group
from callbot.calls.models import Call, CallEvent
from callbot.graph.notifications import parse_notification_batch
from tests.conftest import load_fixture


def ingest(name: str, message_id: str = "") -> None:
    apply_notifications(
        parse_notification_batch(json.dumps(load_fixture(name))), message_id=message_id
    )


def receive_all(layer: Any, channel: str, count: int) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [await layer.receive(channel) for _ in range(count)]

    return async_to_sync(go)()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.needs_redis)])
def any_layer(request: Any, settings: Any) -> Any:
    if request.param == "memory":
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
        }
    else:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "")]},
            }
        }
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_deltas_go_to_the_call_group_and_the_board_after_commit(any_layer: Any) -> None:
    ingest("meeting_join_established.json", "1")
    call = Call.objects.get()
    channel = async_to_sync(any_layer.new_channel)()
    async_to_sync(any_layer.group_add)(call_group(call.pk), channel)
    async_to_sync(any_layer.group_add)(LIVE_CALLS_GROUP, channel)

    ingest("roster_two_join.json", "2")

    board, delta = receive_all(any_layer, channel, 2)  # the board's row first
    assert delta["type"] == "call.delta"
    assert (delta["call_id"], delta["base_version"], delta["version"]) == (
        call.pk,
        1,
        2,
    )
    assert sorted(p["name"] for p in delta["participants"]) == [
        "Ana Lopez",
        "Helpdesk Bot",
        "Lee Chen",
    ]
    assert board["type"] == "calls.delta"
    assert board["call"]["participant_count"] == 2  # the bot is not counted
    assert board["call"]["version"] == 2
    # Only what changed travels: the roster moved, the call's kind and state did not.
    assert "kind" not in board["call"]
    assert "state" not in board["call"]


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_for_a_new_call_store_it_once() -> None:
    """Two webhook workers receive the same new call at once: one row, one event."""
    assert connection.vendor == "postgresql"
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def deliver(message_id: str) -> None:
        try:
            barrier.wait(timeout=5)
            ingest("incoming_p2p_call.json", message_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(m,)) for m in ("same", "same")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)

    assert errors == []
    assert Call.objects.count() == 1
    assert CallEvent.objects.count() == 1
    assert Call.objects.get().event_count == 1


def test_the_board_rows_are_sent_before_the_calls_deltas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ringing call's row is what a supervisor waits on: the board's rows of a
    commit go out before its calls' own deltas (each send a round trip to
    Redis), each group's in order."""
    sent: list[tuple[str, Any]] = []

    class Recording:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            sent.append((group, message.get("version", message.get("call"))))

    monkeypatch.setattr(live, "get_channel_layer", Recording)
    deltas = [
        live.CallDelta(call_id=1, base_version=0, version=1, board={"id": "1"}),
        live.CallDelta(call_id=2, base_version=4, version=5),
        live.CallDelta(call_id=3, base_version=0, version=1, board={"id": "3"}),
    ]

    live.publish_deltas(deltas)

    assert sent == [
        (LIVE_CALLS_GROUP, {"id": "1"}),
        (LIVE_CALLS_GROUP, {"id": "3"}),
        (call_group(1), 1),
        (call_group(2), 5),
        (call_group(3), 1),
    ]
