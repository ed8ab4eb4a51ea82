"""Board watchers hear a live notice when the bot is dropped from a call."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from callbot.calls import live
from tests.dashboard.sockets import open_socket

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live"),
]

NOTICE = {
    "kind": "bot.dropped",
    "call_id": 7,
    "title": "Ana Lopez",
    "text": "Teams dropped the bot when this call became a group call: ...",
    "permission": "Calls.JoinGroupCall.All",
    "at": "2026-11-30T10:00:00+00:00",
}


async def test_a_board_watcher_gets_the_notice_and_a_call_watcher_does_not(
    bob: Any, meeting_call: Any
) -> None:
    board = await open_socket(bob)
    await board.send_json_to({"type": "subscribe", "board": True})
    snapshot = await board.receive_json_from()
    assert snapshot["type"] == "board.snapshot"
    assert snapshot["notices"] == []
    page = await open_socket(bob)
    await page.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    assert (await page.receive_json_from())["type"] == "call.snapshot"

    await database_sync_to_async(live.publish_notice)(NOTICE)

    assert await board.receive_json_from() == {"type": "calls.notice", "notice": NOTICE}
    assert await page.receive_nothing()
    await board.disconnect()
    await page.disconnect()
