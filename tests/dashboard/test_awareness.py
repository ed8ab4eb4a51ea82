"""Supervisors' awareness on the live socket: who else watches a call, who did
what on it (and a clash when two act on the same person), and the board's alerts
and KPIs, live."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from callbot.calls import alerts
from callbot.calls.alertmodels import Alert
from callbot.calls.models import Call
from dashboard import presence
from tests.dashboard.sockets import gather_snapshot, open_socket, snapshot

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


async def next_of(socket: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` (deltas and the like in between skipped)."""
    for _ in range(20):
        message = await socket.receive_json_from(timeout=3)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} among 20 messages")


async def test_a_call_page_shows_who_else_watches_live(
    bob: Any, ada: Any, meeting_call: Call
) -> None:
    bobs = await open_socket(bob)
    first = await snapshot(bobs, call=meeting_call.pk)
    assert first["presence"] == {"watchers": ["bob"]}

    adas = await open_socket(ada)
    second = await snapshot(adas, call=meeting_call.pk)
    assert second["presence"] == {"watchers": ["ada", "bob"]}
    joined = await bobs.receive_json_from()
    assert joined == {
        "type": "call.presence",
        "call_id": meeting_call.pk,
        "watchers": ["ada", "bob"],
    }
    # The one who joined learnt the list from its snapshot: no echo.
    assert await adas.receive_nothing()

    await adas.send_json_to({"type": "unsubscribe", "call": meeting_call.pk})
    left = await bobs.receive_json_from()
    assert left["watchers"] == ["bob"]

    await adas.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    await gather_snapshot(adas)
    assert (await bobs.receive_json_from())["watchers"] == ["ada", "bob"]
    await adas.disconnect()
    assert (await bobs.receive_json_from())["watchers"] == ["bob"]
    await bobs.disconnect()


async def test_an_act_is_shown_to_the_others_and_a_clash_names_both(
    bob: Any, ada: Any, meeting_call: Call, enqueued: list[int]
) -> None:
    ana = await meeting_call.participants.aget(display_name="Ana Lopez")
    bobs, adas = await open_socket(bob), await open_socket(ada)
    await snapshot(bobs, call=meeting_call.pk)
    await snapshot(adas, call=meeting_call.pk)
    await next_of(bobs, "call.presence")
    mute = {"type": "action", "call": meeting_call.pk, "participant": ana.graph_id}

    await bobs.send_json_to({**mute, "request_id": "b1", "kind": "mute_participant"})
    await next_of(bobs, "action.accepted")
    seen = await next_of(adas, "call.act")
    assert (seen["user"], seen["label"], seen["target"], seen["others"]) == (
        "bob",
        "Mute Participant",
        "Ana Lopez",
        [],
    )
    assert seen["participant"] == ana.graph_id

    await adas.send_json_to({**mute, "request_id": "a1", "kind": "remove_participant"})
    await next_of(adas, "action.accepted")
    clash = await next_of(bobs, "call.act")
    assert (clash["user"], clash["label"]) == ("ada", "Remove Participant")
    # Bob's page is told that Ada acted on the person he just muted.
    (earlier,) = clash["others"]
    assert (earlier["user"], earlier["kind"], earlier["target"]) == (
        "bob",
        "mute_participant",
        "Ana Lopez",
    )
    # The actor's own page is not sent its act back (it has action.accepted).
    while not await adas.receive_nothing(timeout=0.3):
        assert (await adas.receive_json_from())["type"] != "call.act"
    await bobs.disconnect()
    await adas.disconnect()


async def test_the_board_carries_kpis_and_open_alerts_and_alerts_arrive_live(
    bob: Any, carol: Any, meeting_call: Call
) -> None:
    old = await database_sync_to_async(alerts.raise_alert)(
        "action_failed", meeting_call, "Mute failed"
    )
    assert old is not None
    supervisor, auditor = await open_socket(bob), await open_socket(carol)
    board = await snapshot(supervisor, board=True)
    assert [a["id"] for a in board["alerts"]["open"]] == [old.pk]
    assert board["kpis"]["active"] == 1
    audit = await snapshot(auditor, board=True)
    assert "alerts" not in audit  # alerts are for those who can act on them
    assert audit["kpis"] == board["kpis"]

    raised = await database_sync_to_async(alerts.raise_alert)(
        "bot_dropped", meeting_call.pk, "Teams removed the bot."
    )
    assert raised is not None
    delta = await next_of(supervisor, "alerts.delta")
    assert [a["kind"] for a in delta["raised"]] == ["bot_dropped"]
    assert delta["raised"][0]["call_id"] == meeting_call.pk
    assert await auditor.receive_nothing(timeout=0.3)

    await supervisor.send_json_to(
        {"type": "alert.dismiss", "alert": raised.pk, "request_id": "d1"}
    )
    # The answer and the board's delta, in either order.
    got = {m["type"]: m for m in [await supervisor.receive_json_from() for _ in "12"]}
    assert got["alerts.delta"]["cleared"] == [raised.pk]
    answer = got["alert.dismissed"]
    assert (answer["alert"], answer["dismissed"]) == (raised.pk, True)
    row = await Alert.objects.aget(pk=raised.pk)
    assert row.cleared_by == "bob"

    await auditor.send_json_to({"type": "alert.dismiss", "alert": old.pk})
    refused = await auditor.receive_json_from()
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert (await Alert.objects.aget(pk=old.pk)).cleared_at is None
    await supervisor.disconnect()
    await auditor.disconnect()


async def test_the_pulse_pushes_kpis_and_alerts_only_when_they_change(
    bob: Any, meeting_call: Call, settings: Any
) -> None:
    settings.BOARD_PULSE_SECONDS = 0.1
    socket = await open_socket(bob)
    board = await snapshot(socket, board=True)
    # The snapshot carried the figures: an idle board hears nothing more.
    assert await socket.receive_nothing(timeout=0.5)

    # An alert another process raised (its group message never reached us).
    await database_sync_to_async(Alert.objects.create)(
        kind="silent_call",
        call=meeting_call,
        raised_at=meeting_call.created_at,
        last_raised_at=meeting_call.created_at,
    )
    pulse = await next_of(socket, "board.pulse")
    assert [a["kind"] for a in pulse["alerts"]["open"]] == ["silent_call"]
    assert pulse["kpis"] == board["kpis"]
    await socket.disconnect()


class _AwayStore:
    """A presence store whose backend is down."""

    async def join(self, *args: Any) -> list[str]:
        raise ConnectionError("Redis is away")

    leave = watchers = record_act = join


async def test_a_presence_store_that_is_away_costs_the_watchers_not_the_call(
    bob: Any, meeting_call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presence, "_store", _AwayStore())
    socket = await open_socket(bob)
    call = await snapshot(socket, call=meeting_call.pk)
    assert (call["call_id"], call["presence"]) == (meeting_call.pk, {"watchers": []})
    assert await socket.receive_nothing()
    await socket.send_json_to({"type": "unsubscribe", "call": meeting_call.pk})
    assert await socket.receive_nothing()
    await socket.disconnect()


async def test_a_call_page_shows_its_own_alerts_live(
    bob: Any, carol: Any, meeting_call: Call
) -> None:
    other = await Call.objects.acreate(graph_id="other-call", state="established")
    mine = await database_sync_to_async(alerts.raise_alert)(
        "action_failed", meeting_call, "Mute failed"
    )
    await database_sync_to_async(alerts.raise_alert)(
        "action_failed", other, "Invite failed"
    )
    assert mine is not None
    supervisor, auditor = await open_socket(bob), await open_socket(carol)
    page = await snapshot(supervisor, call=meeting_call.pk)
    assert [a["id"] for a in page["alerts"]["open"]] == [mine.pk]  # not the other
    audit = await snapshot(auditor, call=meeting_call.pk)
    assert "alerts" not in audit  # alerts are for those who can act on them

    raised = await database_sync_to_async(alerts.raise_alert)(
        "bot_dropped", meeting_call.pk, "Teams removed the bot."
    )
    assert raised is not None
    news = await next_of(supervisor, "call.alerts")
    assert news["call_id"] == meeting_call.pk
    assert [a["id"] for a in news["raised"]] == [raised.pk]
    assert news["cleared"] == []

    await database_sync_to_async(alerts.dismiss_alert)(mine.pk, "ada")
    cleared = await next_of(supervisor, "call.alerts")
    assert (cleared["raised"], cleared["cleared"]) == ([], [mine.pk])
    # Another call's alert does not reach this page; the auditor hears none.
    await database_sync_to_async(alerts.raise_alert)(
        "bot_dropped", other, "Teams removed the bot."
    )
    assert await supervisor.receive_nothing(timeout=0.3)
    assert await auditor.receive_nothing(timeout=0.3)
    await supervisor.disconnect()
    await auditor.disconnect()


async def test_one_refresher_renews_every_watching_socket_and_none_keeps_permissions(
    bob: Any, ada: Any, meeting_call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each socket watching a call is renewed by its event loop's one refresher
    (it was a sleeping task per socket), and no socket keeps the permission names
    its checks cached on its user (a few KiB a socket, for the socket's life)."""
    import asyncio

    from dashboard import awareness

    monkeypatch.setattr(presence, "PRESENCE_REFRESH_SECONDS", 0.05)
    bobs = await open_socket(bob)
    adas = await open_socket(ada)
    await snapshot(bobs, call=meeting_call.pk)
    await snapshot(adas, call=meeting_call.pk)
    await next_of(bobs, "call.presence")  # ada joined

    refresher = awareness._refresher()
    sockets = list(refresher.sockets)
    assert sorted(s.user.get_username() for s in sockets) == ["ada", "bob"]
    for socket in sockets:
        assert not {"_perm_cache", "_user_perm_cache"} & set(vars(socket.user))
    runs = [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "PresenceRefresher._run"
    ]
    assert runs == [refresher.task]

    # Renewed while they stay: each tick joins every watcher again.
    store = presence.presence_store()
    renewed: list[str] = []
    join = store.join

    async def counted(call_id: int, channel: str, user: str) -> list[str]:
        renewed.append(user)
        return await join(call_id, channel, user)

    monkeypatch.setattr(store, "join", counted)
    for _ in range(100):
        if {"ada", "bob"} <= set(renewed):
            break
        await asyncio.sleep(0.02)
    assert {"ada", "bob"} <= set(renewed)

    await adas.disconnect()
    await bobs.disconnect()
    assert list(refresher.sockets) == []
    await asyncio.sleep(0.2)
    assert refresher.task is not None
    assert refresher.task.done()
