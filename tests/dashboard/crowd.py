"""Many live calls and a crowded meeting, written with bulk_create: the sizes at
which whole snapshots used to pass daphne's 1 MiB message limit. Used by the
socket tests here and, through ``manage.py shell``, by the browser tests."""

from __future__ import annotations

import uuid

from django.utils import timezone

from callbot.calls.models import Call, Participant
from callbot.calls.states import CallDirection, CallKind, CallState

PREFIX = "crowd-"
MEETING_SUBJECT = "Crowded all-hands"


def _subject(number: int) -> str:
    # Every tenth subject as long as the column allows, and not ASCII: six bytes a
    # character on the wire once JSON escapes it.
    if number % 10 == 0:
        return ("Réunion d'équipe ✓ " * 20)[:255]
    return f"Support line {number:04d}"


def populate(calls: int, people: int) -> int:
    """``calls`` live calls, the newest a meeting with ``people`` present; its id."""
    now = timezone.now()
    rows = [
        Call(
            graph_id=f"{PREFIX}{uuid.uuid4()}",
            graph_key=f"{PREFIX}{uuid.uuid4()}",
            direction=CallDirection.INCOMING,
            kind=CallKind.GROUP if n % 3 else CallKind.PEER_TO_PEER,
            state=CallState.ESTABLISHED,
            subject=_subject(n),
            source_display=f"Caller {n:04d}",
            established_at=now,
            version=1,
        )
        for n in range(calls - 1)
    ]
    Call.objects.bulk_create(rows, batch_size=500)
    meeting = Call.objects.create(
        graph_id=f"{PREFIX}{uuid.uuid4()}",
        graph_key=f"{PREFIX}{uuid.uuid4()}",
        direction=CallDirection.INCOMING,
        kind=CallKind.MEETING,
        state=CallState.ESTABLISHED,
        subject=MEETING_SUBJECT,
        established_at=now,
        version=1,
    )
    Participant.objects.bulk_create(
        (
            Participant(
                call=meeting,
                graph_id=str(uuid.uuid4()),
                graph_key=f"p{n}",
                identity_kind=Participant.IdentityKind.USER,
                identity_id=str(uuid.uuid4()),
                display_name=f"Attendee {n:04d}" if n % 7 else f"Zoë Ångström {n:04d}",
                role="attendee",
                is_muted=n % 2 == 0,
                joined_at=now,
            )
            for n in range(people)
        ),
        batch_size=1000,
    )
    return meeting.pk


def clear() -> None:
    """Delete what ``populate`` made (participants go with their calls)."""
    Call.objects.filter(graph_id__startswith=PREFIX).delete()
