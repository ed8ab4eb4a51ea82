"""callbot_live_sockets counts the signed-in sockets this process holds open."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.dashboard.sockets import connect, open_socket

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]


def live_sockets() -> float:
    return REGISTRY.get_sample_value("callbot_live_sockets") or 0.0


async def test_open_sockets_are_counted_and_refused_ones_are_not(
    bob: Any, carol: Any, dave: Any
) -> None:
    before = live_sockets()
    first = await open_socket(bob)
    second = await open_socket(carol)
    refused = await connect(dave)  # no role: accepted, then closed
    await refused.connect()
    await refused.receive_output()
    await refused.disconnect()
    assert live_sockets() == before + 2

    await first.disconnect()
    assert live_sockets() == before + 1
    await second.disconnect()
    assert live_sockets() == before
