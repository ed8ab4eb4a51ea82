"""Playing the bot by hand in end-to-end tests: Graph calls through Callbot's own
``GraphClient`` (so the notifications they cause go to Callbot's webhook), and
waits on what the webhook stored.

Each wait is on a row in the database, the signal that the notification went all
the way: emulator → HTTP → JWT check → ingest → commit.
"""

from __future__ import annotations

from typing import Any

from callbot.calls.models import Call, CallEvent, Participant
from callbot.graph.client import GraphClient
from callbot.graph.resources import Identity
from tests.e2e.conftest import Callbot
from tests.support.emulator import wait_until

TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
ANA = Identity("user", "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170", "Ana Lopez", TENANT)
LEE = Identity("user", "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4", "Lee Chen", TENANT)
RAVI = Identity("user", "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918", "Ravi Iyer", TENANT)
PROMPT = "https://bot.example.net/audio/menu.wav"


def person(identity: Identity) -> dict[str, Any]:
    """The control API's shape for a person."""
    return {"user": {"id": identity.id, "displayName": identity.display_name}}


def stored_call(graph_id: str, timeout: float = 5.0, **state: Any) -> Call:
    """The Call row for ``graph_id`` once it exists (and matches ``state``)."""
    found: Call = wait_until(
        lambda: Call.objects.filter(graph_id=graph_id, **state).first(), timeout
    )
    return found


def ring(callbot: Callbot, caller: Identity = ANA) -> Call:
    """A person calls the bot; returns the stored ``incoming`` call."""
    graph_id = callbot.emulator.control(
        "POST", "/calls/incoming", {"from": person(caller)}
    )["callId"]
    return stored_call(graph_id)


def answer(callbot: Callbot, client: GraphClient, call: Call) -> Call:
    """Answer ``call`` as the bot would and wait until it is established."""
    client.answer(call.graph_id, callback_uri=callbot.webhook)
    return stored_call(call.graph_id, state="established", media_state_audio="active")


def ring_and_answer(
    callbot: Callbot, client: GraphClient, caller: Identity = ANA
) -> Call:
    return answer(callbot, client, ring(callbot, caller))


def join_meeting(
    callbot: Callbot, client: GraphClient, subject: str = "Sev2 bridge", **extra: Any
) -> tuple[dict[str, Any], Call]:
    """A meeting (created on the emulator) the bot joined by its coordinates."""
    meeting = callbot.emulator.control("POST", "/meetings", {"subject": subject})
    joined = client.join_meeting(
        meeting["chatInfo"],
        meeting["meetingInfo"],
        TENANT,
        callback_uri=callbot.webhook,
        **extra,
    )
    assert joined.id is not None
    return meeting, stored_call(joined.id, state="established")


def present(call: Call, **where: Any) -> int:
    """How many participants of ``call`` the database says are in it."""
    return Participant.objects.filter(call=call, left_at__isnull=True, **where).count()


def operation_outcome(call: Call, operation_id: str) -> dict[str, Any]:
    """The resource of the notification that finished ``operation_id``."""

    def finished() -> dict[str, Any] | None:
        for event in CallEvent.objects.filter(call=call, resource_kind="operation"):
            data = event.payload.get("resourceData") or {}
            if data.get("id") == operation_id and data.get("status") in (
                "completed",
                "failed",
            ):
                return dict(data)
        return None

    found: dict[str, Any] = wait_until(finished)
    return found


def events_are_whole(call: Call) -> None:
    """Every stored event is counted once, in an unbroken per-call sequence."""
    call.refresh_from_db()
    sequences = list(
        CallEvent.objects.filter(call=call)
        .order_by("sequence")
        .values_list("sequence", flat=True)
    )
    assert sequences == list(range(1, call.event_count + 1))
