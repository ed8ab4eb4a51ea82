"""The board's KPI strip, against calls built by hand: each figure as defined in
``dashboard/kpis.py``, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls.models import Call
from callbot.ivr.models import IvrSession
from dashboard.kpis import board_kpis
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def at(minutes: float) -> Any:
    return NOW - timedelta(minutes=minutes)


def call(created_minutes_ago: float = 1, **fields: Any) -> Call:
    made = CallFactory(**fields)
    Call.objects.filter(pk=made.pk).update(created_at=at(created_minutes_ago))
    return made


def test_each_figure_counts_what_its_definition_says(
    django_assert_num_queries: Any,
) -> None:
    # Ringing: two incoming calls, the older waiting since 3 minutes ago.
    call(3, state="incoming")
    call(1, state="incoming")
    # An outgoing call ringing someone else is no wait of ours.
    call(1, state="ringing", direction="outgoing")
    # Active: established and on hold; one of them in an IVR flow.
    in_ivr = call(10, state="established", established_at=at(9))
    call(20, state="hold", established_at=at(19))
    IvrSession.objects.create(call=in_ivr, flow_start="menu")
    # A meeting with two people present, one gone and the bot.
    meeting = call(30, state="established", kind="meeting", established_at=at(90))
    ParticipantFactory(call=meeting)
    ParticipantFactory(call=meeting)
    ParticipantFactory(call=meeting, left_at=at(5))
    ParticipantFactory(call=meeting, is_bot=True)
    # Ended in the last hour: answered and handled for 4 and 6 minutes...
    call(30, state="terminated", established_at=at(20), terminated_at=at(16))
    call(30, state="terminated", established_at=at(20), terminated_at=at(14))
    # ...abandoned (never answered), and one ended two hours ago (out of the window).
    call(5, state="terminated", terminated_at=at(4))
    call(200, state="terminated", established_at=at(190), terminated_at=at(120))
    # An IVR session of an ended call does not count.
    IvrSession.objects.create(
        call=call(50, state="terminated", terminated_at=at(40), direction="outgoing"),
        flow_start="menu",
    )
    # Failed actions: one in the last hour, one before it, and a completed one.
    ActionFactory(call=in_ivr, status="failed", completed_at=at(10))
    ActionFactory(call=in_ivr, status="failed", completed_at=at(70))
    ActionFactory(call=in_ivr, status="completed", completed_at=at(1))

    # The calls' aggregate, the people, the failed actions, the IVR sessions.
    with django_assert_num_queries(4):
        kpis = board_kpis(NOW)

    assert kpis["ringing"] == 2
    assert kpis["longest_wait_since"] == at(3).isoformat()
    assert kpis["active"] == 3
    assert kpis["in_ivr"] == 1
    # Two meeting participants, plus the caller of each of the five live 1:1 calls.
    assert kpis["people"] == 2 + 5
    # Answered in the hour: the IVR call, the held call and the two that ended.
    assert kpis["answered_hour"] == 4
    assert kpis["abandoned_hour"] == 1
    assert kpis["failed_actions_hour"] == 1
    assert kpis["avg_handle_seconds"] == 300


def test_a_quiet_board_has_zeros_and_no_averages() -> None:
    assert board_kpis() == {
        "ringing": 0,
        "longest_wait_since": None,
        "active": 0,
        "in_ivr": 0,
        "people": 0,
        "answered_hour": 0,
        "abandoned_hour": 0,
        "failed_actions_hour": 0,
        "avg_handle_seconds": None,
    }
