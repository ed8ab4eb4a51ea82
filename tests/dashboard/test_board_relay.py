"""The board's group received once per process (``dashboard/boardrelay.py``): one
member in the group however many board sockets are open, every socket still
getting every board message in order, and the relay gone with the last one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from callbot.calls.live import LIVE_CALLS_GROUP
from callbot.runtime.layers import InProcessChannelLayer
from dashboard.boardrelay import BoardInbox
from tests.dashboard.sockets import gather_snapshot, open_socket

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


def delta(version: int) -> dict[str, Any]:
    return {"type": "calls.delta", "call": {"id": 7, "version": version}}


async def next_delta(socket: Any) -> dict[str, Any]:
    got: dict[str, Any] = await socket.receive_json_from()
    while got["type"] != "calls.delta":
        got = await socket.receive_json_from()
    return got


async def test_three_board_sockets_are_one_member_of_the_group_and_get_every_delta(
    bob: Any,
) -> None:
    layer = get_channel_layer()
    sockets = [await open_socket(bob) for _ in range(3)]
    for socket in sockets:
        await socket.send_json_to({"type": "subscribe", "board": True})
        await gather_snapshot(socket)
    if isinstance(layer, InProcessChannelLayer):
        assert len(layer.groups[LIVE_CALLS_GROUP]) == 1

    for version in (1, 2, 3):
        await layer.group_send(LIVE_CALLS_GROUP, delta(version))

    for socket in sockets:
        assert [await next_delta(socket) for _ in range(3)] == [
            delta(1),
            delta(2),
            delta(3),
        ]
    for socket in sockets:
        await socket.disconnect()
    if isinstance(layer, InProcessChannelLayer):
        assert not layer.groups.get(LIVE_CALLS_GROUP)


async def test_a_socket_that_left_the_board_gets_no_more_deltas(bob: Any) -> None:
    layer = get_channel_layer()
    leaving, staying = await open_socket(bob), await open_socket(bob)
    for socket in (leaving, staying):
        await socket.send_json_to({"type": "subscribe", "board": True})
        await gather_snapshot(socket)

    await leaving.send_json_to({"type": "unsubscribe", "board": True})
    await leaving.send_json_to({"type": "ping"})
    assert (await leaving.receive_json_from())["type"] == "pong"
    await layer.group_send(LIVE_CALLS_GROUP, delta(1))

    assert await next_delta(staying) == delta(1)
    assert await leaving.receive_nothing(timeout=0.2)
    for socket in (leaving, staying):
        await socket.disconnect()


async def test_an_inbox_gives_its_messages_in_order_and_raises_a_relay_failure() -> (
    None
):
    inbox = BoardInbox()
    assert not inbox
    inbox.put(delta(1))
    inbox.put(ConnectionError("redis went away"))
    assert inbox
    assert inbox.take() == delta(1)
    with pytest.raises(ConnectionError):
        inbox.take()
    assert not inbox


async def test_the_relay_rejoins_the_group_while_its_receive_goes_on(
    bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group drops a member after its expiry; the relay adds its channel
    again on a timer, without interrupting the receive that hands deltas on."""
    from dashboard import boardrelay

    monkeypatch.setattr(boardrelay, "REJOIN_SECONDS", 0.05)
    layer = get_channel_layer()
    added: list[str] = []
    group_add = layer.group_add

    async def counted(group: str, channel: str) -> None:
        added.append(group)
        await group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", counted)
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "board": True})
    await gather_snapshot(socket)
    await asyncio.sleep(0.3)

    await layer.group_send(LIVE_CALLS_GROUP, delta(1))
    assert await next_delta(socket) == delta(1)
    assert added.count(LIVE_CALLS_GROUP) >= 3  # the join, then at least two rejoins
    await socket.disconnect()
