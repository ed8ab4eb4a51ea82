"""One change in a 1,000-person meeting pushes one participant, not the roster:
the frames a watching socket gets for it are under 1 KB each, on the full-roster
path (Graph lists all 1,000 people; one of them is now muted)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from callbot.calls import live
from callbot.calls.models import Call
from dashboard.consumers import encode
from tests.calls.test_participant_changes import LEE, crowd, ingest

pytestmark = pytest.mark.django_db

PEOPLE = 1000
MOST_BYTES = 1024


def test_one_mute_in_a_1000_person_meeting_pushes_under_1_kb(
    channel_layer: Any, django_capture_on_commit_callbacks: Any, record_property: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ingest("meeting_join_established.json", "1")
    roster = crowd(PEOPLE - 3)  # the fixture's three and the crowd
    with django_capture_on_commit_callbacks(execute=True):
        ingest(roster, "2")
    call = Call.objects.get()
    assert call.participants.filter(left_at__isnull=True).count() == PEOPLE

    channel = async_to_sync(channel_layer.new_channel)()
    for group in (live.call_group(call.pk), live.LIVE_CALLS_GROUP):
        async_to_sync(channel_layer.group_add)(group, channel)
    muted = copy.deepcopy(roster)
    lee = next(p for p in muted["value"][0]["resourceData"] if p["id"] == LEE)
    lee["isMuted"] = True
    with django_capture_on_commit_callbacks(execute=True):
        ingest(muted, "3")

    pushed = [async_to_sync(channel_layer.receive)(channel) for _ in range(2)]
    by_type = {message["type"]: message for message in pushed}
    call_delta, board_delta = by_type["call.delta"], by_type["calls.delta"]
    # The socket sends each as it came (``LiveConsumer.call_delta``/``calls_delta``),
    # encoded as here.
    sizes = {kind: len(encode(message).encode()) for kind, message in by_type.items()}
    record_property("delta_bytes", sizes)
    assert sizes["call.delta"] < MOST_BYTES, sizes
    assert sizes["calls.delta"] < MOST_BYTES, sizes
    assert [p["id"] for p in call_delta["participants"]] == [LEE]
    assert call_delta["participants"][0]["is_muted"] is True
    assert call_delta["left"] == []
    assert board_delta["call"]["muted_count"] == 1
    assert board_delta["call"]["participant_count"] == PEOPLE - 1  # the bot apart
