"""A person calls the bot: emulator → Callbot's webhook → database, over real HTTP."""

from __future__ import annotations

import pytest

from callbot.calls.models import Call, CallEvent
from tests.e2e.conftest import Callbot
from tests.support.emulator import wait_until

pytestmark = pytest.mark.e2e


def test_incoming_call_reaches_the_database_and_ends_unanswered(
    quiet_bot: Callbot,
) -> None:
    emulator = quiet_bot.emulator
    emulator.control("PATCH", "/config", {"answerTimeout": 0.3})
    call_id = emulator.control(
        "POST", "/calls/incoming", {"from": {"phone": "+14255550123"}}
    )["callId"]

    call = wait_until(lambda: Call.objects.filter(graph_id=call_id).first())
    assert call.direction == "incoming"
    assert "+14255550123" in call.source_display

    wait_until(
        lambda: Call.objects.get(graph_id=call_id).state == "terminated", timeout=10
    )
    emulator.wait_idle()
    ended = Call.objects.get(graph_id=call_id)
    assert (ended.result_code, ended.result_subcode) == (408, 1106)
    assert CallEvent.objects.filter(call=ended).count() == ended.event_count >= 2
