"""One of everything the API serves: a live call with a person on it, an action, a
meeting, a recording with audio, an alert and an audit entry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from callbot.calls import audit
from callbot.calls.models import Action, Alert, Call, Meeting, Participant, Recording
from tests.factories import (
    ActionFactory,
    CallFactory,
    MeetingFactory,
    ParticipantFactory,
)

JOIN_LINK = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ5ZTY3ZjQtYWRiMi00MWY2"
    "LWE5ZjMtZjkxNjY0OTYxZTBl%40thread.v2/0?context=%7b%22Tid%22%3a%22c1a7e3d2-5b4f-"
    "4e6a-8d9c-0f1e2d3c4b5a%22%2c%22Oid%22%3a%2250b6a8b4-5d8a-4f4f-9a47-2f7f5f9d2c11%22%7d"
)
WAV = b"RIFF$\x00\x00\x00WAVEfmt " + bytes(40)


@dataclass
class World:
    call: Call
    person: Participant
    action: Action
    meeting: Meeting
    recording: Recording
    alert: Alert


def make_world() -> World:
    call = CallFactory(subject="Quarterly review")
    person = ParticipantFactory(call=call, display_name="Lee Ortiz")
    action = ActionFactory(call=call, kind=Action.Kind.PLAY_PROMPT, status="completed")
    meeting = MeetingFactory()
    recording = Recording(
        action=ActionFactory(call=call, kind=Action.Kind.RECORD_RESPONSE),
        call=call,
        size=len(WAV),
    )
    recording.audio.save("r.wav", ContentFile(WAV), save=False)
    recording.save()
    now = timezone.now()
    alert = Alert.objects.create(
        kind="action_failed",
        call=call,
        call_label="Quarterly review",
        message="Play prompt failed",
        raised_at=now - timedelta(seconds=5),
        last_raised_at=now,
    )
    audit.record(None, "answer", "Lee Ortiz", call, outcome="requested", detail={})
    return World(call, person, action, meeting, recording, alert)
