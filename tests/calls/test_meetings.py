"""Meetings: stored by their coordinates once, saved by people, joined when due."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls import meetings
from callbot.calls.access import ActionRefusedError
from callbot.calls.meetings import Coordinates
from callbot.calls.models import Meeting
from callbot.graph.resources import CallResource, OnlineMeetingResource
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


# --- the one upsert by coordinates ----------------------------------------------------

THREAD = "19:meeting_NjQ5ZTI3YjAtMGQ2ZS00@thread.v2"
ORGANIZER = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"
TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
JOIN_ID = "4315550987"


def stored(meeting: Meeting | None) -> Meeting:
    assert meeting is not None
    return Meeting.objects.get(pk=meeting.pk)


def test_coordinates_that_identify_no_meeting_store_nothing() -> None:
    assert meetings.upsert_meeting(Coordinates()) is None
    assert (
        meetings.upsert_meeting(
            Coordinates(organizer_id=ORGANIZER, tenant_id=TENANT, passcode="kT9")
        )
        is None
    )
    assert not Meeting.objects.exists()


def test_a_meeting_is_found_by_its_thread_and_only_its_blanks_are_filled() -> None:
    first = meetings.upsert_meeting(
        Coordinates(thread_id=THREAD, organizer_id=ORGANIZER), extra={"subject": "Ops"}
    )
    again = meetings.upsert_meeting(
        Coordinates(
            thread_id=THREAD,
            organizer_id="0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
            tenant_id=TENANT,
            join_meeting_id=JOIN_ID,
        ),
        extra={"subject": "Another name", "starts_at": None},
    )

    assert again is not None
    assert first is not None
    assert again.pk == first.pk
    meeting = stored(again)
    assert (meeting.organizer_id, meeting.subject) == (ORGANIZER, "Ops")
    assert (meeting.tenant_id, meeting.join_meeting_id) == (TENANT, JOIN_ID)
    assert Meeting.objects.count() == 1


def test_replace_overwrites_stored_values_but_never_blanks_them() -> None:
    meetings.upsert_meeting(
        Coordinates(thread_id=THREAD, organizer_id=ORGANIZER, passcode="old"),
        extra={"subject": "Ops"},
    )
    other = "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"

    meeting = stored(
        meetings.upsert_meeting(
            Coordinates(thread_id=THREAD, organizer_id=other),
            replace=True,
            extra={"subject": "Renamed", "ends_at": None},
        )
    )

    assert (meeting.organizer_id, meeting.subject) == (other, "Renamed")
    assert meeting.passcode == "old"
    assert Meeting.objects.count() == 1


def test_a_meeting_without_a_thread_is_found_by_its_join_meeting_id() -> None:
    first = meetings.upsert_meeting(
        Coordinates(join_meeting_id=JOIN_ID, passcode="kT9")
    )
    again = meetings.upsert_meeting(
        Coordinates(join_meeting_id=JOIN_ID, tenant_id=TENANT)
    )

    assert first is not None
    assert stored(again).pk == first.pk
    assert (stored(again).passcode, stored(again).tenant_id) == ("kT9", TENANT)
    assert Meeting.objects.count() == 1


def test_a_meeting_known_only_by_a_token_is_created_each_time() -> None:
    first = meetings.upsert_meeting(Coordinates(meeting_token="token-1"))
    second = meetings.upsert_meeting(Coordinates(meeting_token="token-1"))

    assert stored(first).pk != stored(second).pk
    assert stored(first).meeting_token == "token-1"


def test_a_given_meeting_row_is_the_one_written() -> None:
    mine = MeetingFactory(subject="Mine")

    updated = meetings.upsert_meeting(
        Coordinates(thread_id=THREAD, organizer_id=ORGANIZER),
        replace=True,
        meeting=mine,
    )
    new = meetings.upsert_meeting(
        Coordinates(join_meeting_id=JOIN_ID), meeting=Meeting(subject="New")
    )

    assert stored(updated).pk == mine.pk
    assert (stored(updated).thread_id, stored(updated).subject) == (THREAD, "Mine")
    assert (stored(new).join_meeting_id, stored(new).subject) == (JOIN_ID, "New")
    assert Meeting.objects.count() == 2


def test_a_meeting_first_known_by_its_join_id_gains_its_thread_not_a_twin() -> None:
    # Joining by meeting id, Graph answers with the resolved chatInfo (contract
    # §6.2): the meeting stored by its join id is the same meeting.
    by_id = meetings.upsert_meeting(
        Coordinates(join_meeting_id=JOIN_ID, passcode="kT9")
    )
    resolved = meetings.upsert_meeting(
        Coordinates(thread_id=THREAD, message_id="0", join_meeting_id=JOIN_ID)
    )

    assert stored(resolved).pk == stored(by_id).pk
    assert stored(resolved).thread_id == THREAD
    assert Meeting.objects.count() == 1
    assert meetings.upsert_meeting(Coordinates(join_meeting_id=JOIN_ID)) is not None


# The four ways coordinates arrive, each naming the meeting of JOIN_URL.
def _by_link(bob: Any) -> Meeting:
    return meetings.meeting_to_join({"join_web_url": JOIN_URL})


def _saved(bob: Any) -> Meeting:
    return meetings.save_meeting(actor=bob, subject="Weekly ops", join_web_url=JOIN_URL)


def _notification(bob: Any) -> Meeting:
    resource = CallResource.parse(
        {
            "id": "491f0b00-ffff-4bc9-a43e-b226498ec22a",
            "state": "established",
            "tenantId": TENANT,
            "chatInfo": {"threadId": THREAD, "messageId": "0"},
            "meetingInfo": {
                "@odata.type": "#microsoft.graph.organizerMeetingInfo",
                "organizer": {"user": {"id": ORGANIZER, "tenantId": TENANT}},
            },
        }
    )
    return stored(meetings.meeting_for_call(resource))


def _online_meeting(bob: Any) -> Meeting:
    resource = OnlineMeetingResource.parse(
        {
            "id": "MSpkYzE3NjhhYi02ZTM4LTQ1ZTEtOGMwNC0",
            "subject": "Weekly ops",
            "joinWebUrl": JOIN_URL,
            "chatInfo": {"threadId": THREAD, "messageId": "0"},
            "joinMeetingIdSettings": {"joinMeetingId": JOIN_ID, "passcode": "kT9"},
            "participants": {
                "organizer": {
                    "identity": {"user": {"id": ORGANIZER, "tenantId": TENANT}}
                }
            },
        }
    )
    now = timezone.now()
    return meetings.store_online_meeting(
        resource, starts_at=now, ends_at=now + timedelta(hours=1)
    )


ARRIVALS = {
    "link": _by_link,
    "saved": _saved,
    "notification": _notification,
    "online": _online_meeting,
}


@pytest.mark.parametrize(
    "order",
    [
        ("link", "saved", "notification", "online"),
        ("online", "notification", "saved", "link"),
        ("notification", "link", "online", "saved"),
        ("saved", "online", "link", "notification"),
    ],
    ids="-then-".join,
)
def test_the_four_ways_a_meeting_arrives_store_it_once(
    bob: Any, order: tuple[str, ...]
) -> None:
    found = [ARRIVALS[name](bob) for name in order]

    assert {m.pk for m in found} == {found[0].pk}
    meeting = Meeting.objects.get()
    assert (meeting.thread_id, meeting.organizer_id, meeting.tenant_id) == (
        THREAD,
        ORGANIZER,
        TENANT,
    )
    assert meeting.join_meeting_id == JOIN_ID
