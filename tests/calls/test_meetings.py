"""Meetings: stored by their coordinates once, saved by people, joined when due."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls import meetings
from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Meeting
from tests.factories import MeetingFactory

pytestmark = pytest.mark.django_db

JOIN_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ5ZTI3YjAtMGQ2ZS00"
    "%40thread.v2/0?context=%7b%22Tid%22%3a%22c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
    "%22%2c%22Oid%22%3a%228a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d%22%7d"
)


def test_pasted_join_link_becomes_a_stored_meeting(bob: Any) -> None:
    starts = timezone.now() + timedelta(hours=1)
    meeting = meetings.save_meeting(
        actor=bob,
        subject="Weekly ops",
        join_web_url=JOIN_URL,
        starts_at=starts,
        ends_at=starts + timedelta(minutes=30),
        auto_join=True,
    )
    assert meeting.thread_id == "19:meeting_NjQ5ZTI3YjAtMGQ2ZS00@thread.v2"
    assert meeting.organizer_id == "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"
    assert meeting.auto_join
    assert meeting.joined_at is None
    with pytest.raises(ActionRefusedError) as refused:
        meetings.save_meeting(actor=bob, join_web_url="https://example.com/meet/1")
    assert refused.value.code == "invalid"


def test_due_meetings_are_claimed_once(bob: Any) -> None:
    now = timezone.now()
    due = MeetingFactory(auto_join=True, starts_at=now - timedelta(seconds=5))
    MeetingFactory(auto_join=True, starts_at=now + timedelta(hours=1))
    MeetingFactory(auto_join=False, starts_at=now - timedelta(seconds=5))
    stale = MeetingFactory(auto_join=True, starts_at=now - timedelta(days=1))

    assert meetings.due_meetings(now) == [due.pk]
    assert meetings.due_meetings(now) == []
    assert Meeting.objects.get(pk=stale.pk).joined_at is not None
