"""The bot dropped from a call it lacked group-call permission for, through Callbot.

The emulator plays the app without ``Calls.JoinGroupCall.All``: a person calls the
bot, Callbot answers, the caller adds a third person, and Teams drops the bot
(contract §7.11; docs/emulator.md). Callbot stores the end, words it on the board
row and the call page, audits it and announces it.
"""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest

from callbot.calls import live
from callbot.calls.models import AuditEntry, Call
from callbot.calls.services import request_action
from dashboard.snapshots import board_snapshot, call_snapshot
from tests.e2e.conftest import Callbot
from tests.support.emulator import wait_until

pytestmark = pytest.mark.e2e

ANA = {
    "user": {"id": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170", "displayName": "Ana Lopez"}
}
RAVI = {
    "user": {"id": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918", "displayName": "Ravi Iyer"}
}
DROPPED = (
    "Teams dropped the bot when this call became a group call: the app lacks "
    "Calls.JoinGroupCall.All, which would have kept it in the call."
)


def test_a_bot_without_group_call_permission_is_dropped_and_everyone_is_told(
    callbot: Callbot,
) -> None:
    emulator = callbot.emulator
    emulator.control(
        "PATCH",
        "/config",
        {
            "revokePermissions": [
                "Calls.JoinGroupCall.All",
                "Calls.JoinGroupCallAsGuest.All",
            ]
        },
    )
    notices: list[dict[str, Any]] = []
    heard = threading.Event()

    def record(notice: dict[str, Any]) -> None:
        notices.append(notice)
        heard.set()

    with mock.patch.object(live, "publish_notice", side_effect=record):
        graph_id = emulator.control("POST", "/calls/incoming", {"from": ANA})["callId"]
        call = wait_until(lambda: Call.objects.filter(graph_id=graph_id).first())
        request_action("answer", actor=None, call=call)
        wait_until(lambda: Call.objects.get(pk=call.pk).state == "established")

        emulator.control("POST", f"/calls/{graph_id}/escalate", {"add": RAVI})

        wait_until(lambda: Call.objects.get(pk=call.pk).state == "terminated")
        assert heard.wait(10)

    ended = Call.objects.get(pk=call.pk)
    assert (ended.result_code, ended.result_subcode) == (403, 7504)
    # The call page and the board say what happened and which permission was missing.
    assert call_snapshot(ended.pk)["call"]["dropped"] == DROPPED
    [notice] = board_snapshot()["notices"]
    assert (notice["call_id"], notice["text"]) == (ended.pk, DROPPED)
    # The alert hook: an audit entry by the bot, and the live notice.
    entry = AuditEntry.objects.get(action="bot.dropped")
    assert (entry.call_id, entry.actor_name, entry.outcome) == (
        ended.pk,
        "callbot",
        "dropped",
    )
    assert entry.detail["permission"] == "Calls.JoinGroupCall.All"
    assert notices == [
        {
            "kind": "bot.dropped",
            "call_id": ended.pk,
            "title": "Ana Lopez",
            "text": DROPPED,
            "permission": "Calls.JoinGroupCall.All",
            "at": notices[0]["at"],
        }
    ]


def test_a_bot_with_group_call_permission_stays_when_the_call_grows(
    callbot: Callbot,
) -> None:
    emulator = callbot.emulator
    graph_id = emulator.control("POST", "/calls/incoming", {"from": ANA})["callId"]
    call = wait_until(lambda: Call.objects.filter(graph_id=graph_id).first())
    request_action("answer", actor=None, call=call)
    wait_until(lambda: Call.objects.get(pk=call.pk).state == "established")

    emulator.control("POST", f"/calls/{graph_id}/escalate", {"add": RAVI})

    wait_until(lambda: Call.objects.get(pk=call.pk).kind == "group")
    grown = call_snapshot(call.pk)["call"]
    assert grown["state"] == "established"
    assert grown["dropped"] == ""
    # A group call now: the bot may mute itself and others.
    assert "mute_bot" not in grown["unavailable"]
    assert "mute_participant" not in grown["unavailable"]
    assert not AuditEntry.objects.filter(action="bot.dropped").exists()
