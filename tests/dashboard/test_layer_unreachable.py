"""A live socket whose channel layer cannot be reached (Redis restarted, a
network cut) is closed with ``CLOSE_LAYER_UNREACHABLE`` and one warning line,
not a traceback from the server per socket and per retry; it leaves the live
sockets gauge as it would on a normal disconnect."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import redis.exceptions
from channels.layers import get_channel_layer

from callbot.observability import metrics
from dashboard.boardrelay import board_relay
from dashboard.protocol import CLOSE_LAYER_UNREACHABLE
from tests.dashboard.sockets import gather_snapshot, open_socket

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


def gauge() -> float:
    return float(metrics.LIVE_SOCKETS._value.get())


async def test_a_socket_whose_layer_goes_away_is_closed_for_a_retry(
    bob: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before = gauge()
    socket = await open_socket(bob)
    await socket.send_json_to({"type": "subscribe", "board": True})
    await gather_snapshot(socket)
    assert gauge() == before + 1

    # The board's relay meets Redis gone first (its receive is the one always
    # waiting) and hands the failure to every board socket of the process.
    failure = redis.exceptions.ConnectionError("Error 111 connecting to redis")
    caplog.set_level(logging.WARNING)
    for inbox in list(board_relay(get_channel_layer()).inboxes.values()):
        inbox.put(failure)
    await socket.send_json_to({"type": "ping"})

    closed = await socket.receive_output(timeout=3)
    while closed["type"] != "websocket.close":
        closed = await socket.receive_output(timeout=3)
    assert closed["code"] == CLOSE_LAYER_UNREACHABLE
    warnings = [
        r for r in caplog.records if "channel layer is unreachable" in r.message
    ]
    assert len(warnings) == 1
    assert warnings[0].exc_info is None
    assert gauge() == before
