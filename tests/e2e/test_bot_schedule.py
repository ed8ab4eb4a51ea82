"""The bot's own clockwork against the emulator: scheduled meeting joins and
leaves, keepAlive, reconciliation of calls Graph forgot, online meetings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest
from celery.signals import worker_ready

from callbot.calls import tasks
from callbot.calls.meetings import save_meeting
from callbot.calls.models import Action, Call, Meeting, Participant
from callbot.calls.services import request_action
from tests.e2e.conftest import Callbot
from tests.e2e.test_call_control import ANA, answered_call, final
from tests.factories import CallFactory
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.e2e]


def emulated_meeting(callbot: Callbot, subject: str) -> dict[str, Any]:
    meeting: dict[str, Any] = callbot.emulator.control(
        "POST", "/meetings", {"subject": subject}
    )
    callbot.emulator.control("POST", f"/meetings/{meeting['id']}/participants", ANA)
    return meeting


def test_scheduled_meeting_is_joined_at_its_start_and_left_at_its_end(
    callbot: Callbot, bob: Any
) -> None:
    coords = emulated_meeting(callbot, "Ops standup")
    now = timezone.now()
    meeting = save_meeting(
        actor=bob,
        subject="Ops standup",
        join_web_url=coords["joinWebUrl"],
        starts_at=now + timedelta(minutes=5),
        ends_at=now + timedelta(minutes=20),
        auto_join=True,
        leave_at_end=True,
    )

    assert tasks.join_due_meetings() == 0  # not yet
    Meeting.objects.filter(pk=meeting.pk).update(starts_at=now - timedelta(seconds=1))
    assert tasks.join_due_meetings() == 1
    assert tasks.join_due_meetings() == 0  # once

    join = final(Action.objects.get(kind="join_meeting"))
    assert join.status == "completed", join.result_message
    call = Call.objects.get(pk=join.call_id)
    assert (call.kind, call.meeting_id) == ("meeting", meeting.pk)
    wait_until(
        lambda: Participant.objects.filter(
            call=call, identity_id=ANA["user"]["id"], left_at__isnull=True
        ).exists()
    )

    Meeting.objects.filter(pk=meeting.pk).update(ends_at=timezone.now())
    tasks.join_due_meetings()
    hang_up = final(Action.objects.get(kind="hang_up", call=call))
    assert hang_up.status == "completed"
    assert Call.objects.get(pk=call.pk).state == "terminated"


def test_keep_alive_reaches_graph_for_every_connected_call(callbot: Callbot) -> None:
    call = answered_call(callbot)

    assert tasks.send_keep_alives() == 1
    assert tasks.send_keep_alives() == 0  # kept alive just now

    call.refresh_from_db()
    assert call.last_keep_alive_at is not None
    posts = [
        r
        for r in callbot.emulator.control("GET", "/requests")["value"]
        if r["path"].endswith("/keepAlive")
    ]
    assert [r["status"] for r in posts] == [200]


def test_reconciliation_closes_a_call_graph_no_longer_knows(
    callbot: Callbot, settings: Any
) -> None:
    call = answered_call(callbot)
    alive = answered_call(callbot)
    # The emulator ends the call but its notifications never arrive.
    callbot.emulator.control("POST", "/faults", {"notify_drop": {"probability": 1}})
    callbot.emulator.control("POST", f"/calls/{call.graph_id}/hangup", {})
    callbot.emulator.wait_idle()
    callbot.emulator.control("DELETE", "/faults")
    assert Call.objects.get(pk=call.pk).state == "established"
    settings.RECONCILE_SILENCE_SECONDS = 0

    found = tasks.reconcile_silent_calls()

    assert found == {"gone": 1, "alive": 1}
    ended = Call.objects.get(pk=call.pk)
    assert ended.state == "terminated"
    assert ended.result_message == "Graph no longer knows this call."
    assert not Participant.objects.filter(call=ended, left_at__isnull=True).exists()
    assert Call.objects.get(pk=alive.pk).state == "established"


def test_a_worker_that_starts_closes_the_calls_graph_forgot_while_it_was_down(
    callbot: Callbot,
) -> None:
    alive = answered_call(callbot)
    # Left from before a restart: calls Graph no longer knows, one of them still
    # ringing with an answer queued, all heard from just now.
    ghost = CallFactory(state="established", last_notification_at=timezone.now())
    ringing = CallFactory(state="incoming", last_notification_at=timezone.now())
    answer = Action.objects.create(call=ringing, kind="answer")

    worker_ready.send(sender=None)

    assert Call.objects.get(pk=ghost.pk).state == "terminated"
    assert Call.objects.get(pk=ringing.pk).state == "terminated"
    answer.refresh_from_db()
    assert (answer.status, answer.error_code) == ("failed", "call_lost")
    assert Call.objects.get(pk=alive.pk).state == "established"


def test_online_meeting_is_created_through_graph_and_stored(
    callbot: Callbot, bob: Any
) -> None:
    action = final(
        request_action(
            "create_online_meeting", actor=bob, params={"subject": "Incident review"}
        )
    )

    assert action.status == "completed", action.result_message
    meeting = Meeting.objects.get(subject="Incident review")
    assert meeting.join_web_url.startswith("https://teams.microsoft.com/")
    assert meeting.can_join_by_coordinates
