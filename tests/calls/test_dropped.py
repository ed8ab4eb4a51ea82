"""The bot dropped from a call it lacked group-call permission for: recognised,
worded, audited and announced."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from django.utils import timezone

import pytest

from callbot.calls.dropped import (
    dropped_reason,
    is_dropped,
    missing_permission,
    recent_notices,
)
from callbot.calls.ingest import apply_notifications
from callbot.calls.models import Alert, AlertKind, AuditEntry, Call
from callbot.graph.notifications import parse_notification_batch
from dashboard.snapshots import board_snapshot
from tests.conftest import load_fixture

P2P = "611f0b00-3a1c-4d2e-9b8f-7a6c5d4e3f21"
DROPPED = (
    "Teams dropped the bot when this call became a group call: the app lacks "
    "Calls.JoinGroupCall.All, which would have kept it in the call."
)


def ingest(name: str) -> Any:
    return apply_notifications(parse_notification_batch(json.dumps(load_fixture(name))))


def test_the_drop_result_is_recognised_and_names_the_permission() -> None:
    message = (
        "Call was escalated to a group call and the application lacks "
        "Calls.JoinGroupCall.All."
    )
    assert is_dropped(403, 7504)
    assert not is_dropped(200, 4521)
    assert dropped_reason(403, 7504, message) == DROPPED
    assert dropped_reason(200, 4521, "Call ended by the other participant.") == ""
    # A message naming another permission is honoured; none named: the default.
    assert missing_permission("lacks Calls.JoinGroupCallAsGuest.All") == (
        "Calls.JoinGroupCallAsGuest.All"
    )
    assert missing_permission("") == "Calls.JoinGroupCall.All"


@pytest.mark.django_db
def test_a_dropped_call_is_audited_announced_and_worded_on_board_and_page(
    django_capture_on_commit_callbacks: Any,
) -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_established.json")

    with (
        mock.patch("callbot.calls.live.publish_notice") as notice,
        mock.patch("callbot.calls.live.publish_deltas") as deltas,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = ingest("call_bot_dropped.json")

    call = Call.objects.get(graph_id=P2P)
    assert (call.state, call.result_code, call.result_subcode) == (
        "terminated",
        403,
        7504,
    )
    entry = AuditEntry.objects.get(action="bot.dropped")
    assert (entry.actor, entry.actor_name, entry.call, entry.outcome) == (
        None,
        "callbot",
        call,
        "dropped",
    )
    assert entry.detail["permission"] == "Calls.JoinGroupCall.All"
    assert entry.detail["reason"] == DROPPED
    [[sent], _] = notice.call_args
    assert sent == {
        "kind": "bot.dropped",
        "call_id": call.pk,
        "title": "Ana Lopez",
        "text": DROPPED,
        "permission": "Calls.JoinGroupCall.All",
        "at": sent["at"],
    }
    # The call page's delta and the board row both carry the sentence.
    [delta] = result.deltas
    assert delta.call["dropped"] == DROPPED
    assert delta.board["dropped"] == DROPPED
    deltas.assert_called_once()
    # Supervisors are alerted too (board banner, browser notification).
    alert = Alert.objects.get(kind=AlertKind.BOT_DROPPED)
    assert (alert.call_id, alert.cleared_at) == (call.pk, None)
    assert DROPPED in alert.message


@pytest.mark.django_db
def test_a_redelivered_drop_is_audited_once() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_bot_dropped.json")
    ingest("call_bot_dropped.json")

    assert AuditEntry.objects.filter(action="bot.dropped").count() == 1
    assert Alert.objects.filter(kind=AlertKind.BOT_DROPPED).count() == 1


@pytest.mark.django_db
def test_an_ordinary_ending_is_no_drop() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_terminated.json")

    assert not AuditEntry.objects.filter(action="bot.dropped").exists()
    assert recent_notices(timezone.now()) == []


@pytest.mark.django_db
def test_the_board_snapshot_lists_recent_drops() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_bot_dropped.json")

    snapshot = board_snapshot()

    assert snapshot["calls"] == []  # the call has ended
    [notice] = snapshot["notices"]
    assert (notice["text"], notice["title"]) == (DROPPED, "Ana Lopez")
    later = timezone.now() + timezone.timedelta(days=2)
    assert recent_notices(later) == []
