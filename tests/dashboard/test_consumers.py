"""The live socket: who may connect, snapshots with versions, deltas after them,
resync, and actions checked against the role on every message."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from callbot.asgi import application
from callbot.calls.availability import REASONS
from callbot.calls.kinds import BROWSER_KINDS, LABELS
from callbot.calls.models import Action, AuditEntry, Call
from tests.dashboard.sockets import ORIGIN, connect, ingest, open_socket

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


async def test_a_signed_out_socket_is_closed() -> None:
    socket = await connect(None)
    await socket.connect()
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4401}
    await socket.disconnect()


async def test_a_user_without_a_role_is_turned_away(dave: Any) -> None:
    socket = await connect(dave)
    await socket.connect()
    assert await socket.receive_output() == {"type": "websocket.close", "code": 4403}
    await socket.disconnect()


async def test_hello_says_what_the_role_may_do(bob: Any, carol: Any) -> None:
    for user, role, acts in ((bob, "Supervisor", True), (carol, "Auditor", False)):
        socket = await connect(user)
        await socket.connect()
        hello = await socket.receive_json_from()
        # People who act also get what the ringing-call controls offer.
        offers = (
            {"answer_flows": [], "redirect_targets": [], "phone_refused": ""}
            if acts
            else {}
        )
        assert hello == {
            "type": "hello",
            "user": user.username,
            "role": role,
            "can_act": acts,
            "labels": LABELS,
            # Every "not offered" sentence, once: rows carry only the codes.
            "reasons": REASONS,
            **offers,
        }
        await socket.disconnect()


async def test_hello_carries_a_label_for_every_action_kind(carol: Any) -> None:
    socket = await connect(carol)
    await socket.connect()
    labels = (await socket.receive_json_from())["labels"]
    await socket.disconnect()

    # Worded as the timeline words stored actions, so live entries read alike.
    for kind in Action.Kind:
        assert labels[kind.value] == Action(kind=kind).get_kind_display()
    # The page offers two kinds that are no stored Action.
    assert labels["mute_all"] == "Mute everyone except presenters"
    assert labels["unmute_participant"] == "Unmute Participant"
    assert labels.keys() >= BROWSER_KINDS


async def test_board_snapshot_then_only_deltas_on_top_of_its_versions(
    bob: Any, meeting_call: Call
) -> None:
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "board": True})
    snapshot = await socket.receive_json_from()
    assert snapshot["type"] == "board.snapshot"
    (row,) = snapshot["calls"]
    assert (row["id"], row["version"], row["participant_count"]) == (
        meeting_call.pk,
        2,
        2,
    )

    await database_sync_to_async(ingest)("roster_lee_muted.json", "3")

    delta = await socket.receive_json_from()
    assert delta["type"] == "calls.delta"
    assert delta["call"] == {
        "id": meeting_call.pk,
        "version": 3,
        "participant_count": 2,
        "muted_count": 1,
        "bot_muted": False,
        "sharing": [],
    }
    assert await socket.receive_nothing()
    await socket.disconnect()


async def test_call_snapshot_carries_roster_and_timeline_and_deltas_follow(
    carol: Any, meeting_call: Call
) -> None:
    socket = await open_socket(carol)
    await socket.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    snapshot = await socket.receive_json_from()
    assert snapshot["type"] == "call.snapshot"
    assert snapshot["version"] == 2
    assert sorted(p["name"] for p in snapshot["participants"]) == [
        "Ana Lopez",
        "Helpdesk Bot",
        "Lee Chen",
    ]
    texts = [e["text"] for e in snapshot["timeline"]]
    assert texts[0] == "call updated established"
    # The roster notification names who is in it, and each arrival is a line of
    # its own with the name (a reload used to collapse them into a count).
    roster = next(t for t in texts if t.startswith("roster: 3 in the call ("))
    assert sorted(roster[len("roster: 3 in the call (") : -1].split(", ")) == [
        "Ana Lopez",
        "Helpdesk Bot",
        "Lee Chen",
    ]
    assert {"Ana Lopez joined", "Lee Chen joined"} <= set(texts)

    await database_sync_to_async(ingest)("roster_lee_muted.json", "3")

    delta = await socket.receive_json_from()
    assert delta["type"] == "call.delta"
    assert (delta["base_version"], delta["version"]) == (2, 3)
    assert [(p["name"], p["is_muted"]) for p in delta["participants"]] == [
        ("Lee Chen", True)
    ]
    await socket.disconnect()


async def test_resync_sends_a_fresh_snapshot_of_what_is_watched(
    bob: Any, meeting_call: Call
) -> None:
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    assert (await socket.receive_json_from())["version"] == 2
    await socket.send_json_to({"type": "unsubscribe", "call": meeting_call.pk})
    await database_sync_to_async(ingest)("roster_lee_muted.json", "3")
    assert await socket.receive_nothing()  # unsubscribed: the delta was missed

    await socket.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    await socket.send_json_to({"type": "resync"})
    first, second = await socket.receive_json_from(), await socket.receive_json_from()
    assert (first["type"], first["version"]) == ("call.snapshot", 3)
    assert second["version"] == 3
    lee = next(p for p in second["participants"] if p["name"] == "Lee Chen")
    assert lee["is_muted"] is True
    await socket.disconnect()


async def test_an_unknown_call_is_an_error_not_a_subscription(bob: Any) -> None:
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "call": 999999})
    answer = await socket.receive_json_from()
    assert answer["type"] == "error"
    assert "no call" in answer["message"]
    await socket.disconnect()


async def test_a_supervisor_mutes_a_participant_and_sees_it_pending(
    bob: Any, meeting_call: Call, enqueued: list[int]
) -> None:
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    await socket.receive_json_from()
    ana = await meeting_call.participants.aget(display_name="Ana Lopez")

    await socket.send_json_to(
        {
            "type": "action",
            "request_id": "r1",
            "call": meeting_call.pk,
            "kind": "mute_participant",
            "participant": ana.graph_id,
        }
    )

    messages = [await socket.receive_json_from(), await socket.receive_json_from()]
    by_type = {m["type"]: m for m in messages}
    accepted = by_type["action.accepted"]
    assert accepted["request_id"] == "r1"
    (shape,) = accepted["actions"]
    assert (shape["kind"], shape["status"], shape["target"]) == (
        "mute_participant",
        "queued",
        "Ana Lopez",
    )
    delta = by_type["call.delta"]
    assert delta["actions"][0]["id"] == shape["id"]
    assert delta["base_version"] == 2
    action = await Action.objects.aget(pk=shape["id"])
    assert action.requested_by_id == bob.pk
    assert enqueued == [action.pk]
    await socket.disconnect()


async def test_an_auditors_forged_action_is_refused_and_audited(
    carol: Any, meeting_call: Call, enqueued: list[int]
) -> None:
    socket = await open_socket(carol)
    await socket.send_json_to(
        {
            "type": "action",
            "request_id": "x",
            "call": meeting_call.pk,
            "kind": "hang_up",
        }
    )

    refused = await socket.receive_json_from()
    assert refused["type"] == "action.refused"
    assert refused["code"] == "forbidden"
    assert await Action.objects.acount() == 0
    assert enqueued == []
    entry = await AuditEntry.objects.aget(outcome="refused")
    assert (entry.actor_name, entry.action, entry.call_id) == (
        "carol",
        "hang_up",
        meeting_call.pk,
    )
    await socket.disconnect()


async def test_unmuting_someone_else_is_refused_with_the_reason(
    bob: Any, meeting_call: Call
) -> None:
    socket = await open_socket(bob)
    ana = await meeting_call.participants.aget(display_name="Ana Lopez")
    await socket.send_json_to(
        {
            "type": "action",
            "call": meeting_call.pk,
            "kind": "unmute_participant",
            "participant": ana.graph_id,
        }
    )
    refused = await socket.receive_json_from()
    assert refused["code"] == "unsupported"
    assert "unmute themselves" in refused["message"]
    await socket.disconnect()


async def test_an_action_the_page_never_offers_is_refused(
    bob: Any, meeting_call: Call
) -> None:
    socket = await open_socket(bob)
    await socket.send_json_to(
        {"type": "action", "call": meeting_call.pk, "kind": "keep_alive"}
    )
    refused = await socket.receive_json_from()
    assert (refused["type"], refused["code"]) == ("action.refused", "invalid")
    await socket.send_json_to({"type": "action", "call": "1; drop", "kind": "hang_up"})
    assert (await socket.receive_json_from())["code"] == "invalid"
    assert await Action.objects.acount() == 0
    await socket.disconnect()


async def test_a_socket_whose_session_ended_is_closed_on_its_next_message(
    bob: Any,
) -> None:
    socket = await open_socket(bob)
    from django.contrib.sessions.models import Session

    await Session.objects.all().adelete()
    await socket.send_json_to({"type": "subscribe", "board": True})
    closed = await socket.receive_output()
    assert closed == {"type": "websocket.close", "code": 4401}
    await socket.disconnect()


async def test_signing_out_closes_that_sessions_socket_at_once(bob: Any) -> None:
    client = Client()
    await database_sync_to_async(client.force_login)(bob)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    socket = WebsocketCommunicator(
        application, "/ws/live/", headers=[ORIGIN, (b"cookie", cookie)]
    )
    await socket.connect()
    assert (await socket.receive_json_from())["type"] == "hello"

    await database_sync_to_async(client.post)("/accounts/logout/")

    assert await socket.receive_output() == {"type": "websocket.close", "code": 4401}
    await socket.disconnect()


@pytest.mark.needs_redis
@pytest.mark.parametrize(
    "idle_seconds", [15, pytest.param(60, marks=pytest.mark.slow)], ids=["15s", "60s"]
)
async def test_an_idle_board_socket_on_redis_stays_open_and_still_gets_deltas(
    bob: Any, meeting_call: Call, idle_seconds: int
) -> None:
    """The layer from settings (REDIS_URL), not a test-made one: an idle channel's
    blocking receive must not outlive the Redis socket's read timeout."""
    from django.conf import settings

    assert "RedisChannelLayer" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    layer = channel_layers["default"]
    socket = await open_socket(bob)
    try:
        await socket.send_json_to({"type": "subscribe", "board": True})
        assert (await socket.receive_json_from())["type"] == "board.snapshot"

        # Nothing arrives while idle: a crashed consumer would surface here as
        # its exception or a websocket.close.
        assert await socket.receive_nothing(timeout=idle_seconds, interval=1)
        assert not socket.future.done(), "the consumer ended while idle"

        await database_sync_to_async(ingest)("roster_lee_muted.json", "3")
        delta = await socket.receive_json_from(timeout=5)
        assert (delta["type"], delta["call"]["version"]) == ("calls.delta", 3)
    finally:
        await socket.disconnect()
        # This test's messages and groups out of Redis. Not ``layer.flush()``: it
        # also closes the connection pools of every event loop, and a thread that
        # published from synchronous code keeps a loop of its own with its pool
        # (callbot.calls.pushloop), which only that loop can close.
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        keys = await client.keys(f"{layer.prefix}*")
        if keys:
            await client.delete(*keys)
        await client.aclose()
