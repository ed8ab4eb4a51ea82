"""Board rows that can be told apart: meetings carry their organiser and start."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls import board
from tests.factories import CallFactory, MeetingFactory

pytestmark = pytest.mark.django_db


def test_meeting_rows_carry_organiser_and_start_in_one_more_query(
    django_assert_num_queries: Any,
) -> None:
    start = timezone.now() + timedelta(hours=1)
    standup = MeetingFactory(subject="Standup", starts_at=start, organizer_id="org-1")
    other = MeetingFactory(subject="Standup", starts_at=None, organizer_id="org-2")
    invited = CallFactory(kind="meeting", meeting=standup, source_display="Dana Ito")
    joined = CallFactory(kind="meeting", meeting=other, source_display="")
    plain = CallFactory(kind="peer_to_peer", source_display="Rita Ringer")

    # The live calls, the roster counts with who shares (one statement), the
    # pending actions, meetings.
    with django_assert_num_queries(4):
        rows = {r["id"]: r for r in board.call_summaries(board.live_calls())}

    # A meeting invite's caller is its organiser; else the meeting's organiser id.
    assert rows[invited.pk]["organizer"] == "Dana Ito"
    assert rows[joined.pk]["organizer"] == "org-2"
    assert rows[plain.pk]["organizer"] == "Rita Ringer"
    starts = rows[invited.pk]["meeting_starts_at"]
    assert starts is not None
    assert datetime.fromisoformat(starts) == start
    assert rows[joined.pk]["meeting_starts_at"] is None
    assert rows[plain.pk]["meeting_starts_at"] is None
