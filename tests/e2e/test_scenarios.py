"""Each named scenario's first minute, fast-forwarded, against Callbot's webhook.

The emulator plays the people; the test plays the bot through Callbot's own
``GraphClient`` (answering, listening for tones), since the bot's behaviour is not
what is under test here. Afterwards the database must agree with the emulator's
own view: every call in the same state, every roster with the same people muted
the same way, and exactly as many stored events as notifications delivered
(nothing lost, nothing stored twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from callbot.calls.models import Call, CallEvent, Participant
from callbot.graph.bodies import CallOptions
from callbot.graph.client import GraphClient
from callbot.graph.errors import GraphConflictError, GraphNotFoundError
from callbot.graph.factory import get_graph_client, reset_graph_client
from tests.e2e.conftest import Callbot
from tests.e2e.playing import answer, events_are_whole, stored_call
from tests.support.emulator import RunningEmulator, wait_until

pytestmark = pytest.mark.e2e

MINUTE = 60.0


@pytest.fixture
def client(quiet_bot: Callbot) -> Iterator[GraphClient]:
    yield get_graph_client()
    reset_graph_client()


def start(
    emulator: RunningEmulator, name: str, speed: float, duration: float = MINUTE
) -> int:
    run = emulator.control(
        "POST",
        "/scenarios",
        {"name": name, "seed": 7, "duration": duration, "speed": speed},
    )
    return int(run["id"])


def running(emulator: RunningEmulator, run_id: int) -> bool:
    runs = emulator.control("GET", "/scenarios")["value"]
    return any(r["id"] == run_id and r["status"] == "running" for r in runs)


def settle(emulator: RunningEmulator, run_id: int, timeout: float = 15) -> None:
    """Wait for the run to finish and every notification it caused to be delivered."""
    wait_until(lambda: not running(emulator, run_id), timeout)
    emulator.wait_idle(timeout)


def first_incoming(callbot: Callbot) -> Call:
    """The first call the scenario rang the bot with, once stored."""
    found: Call = wait_until(
        lambda: Call.objects.filter(direction="incoming").order_by("pk").first()
    )
    return found


def nothing_lost_nor_doubled(emulator: RunningEmulator) -> None:
    """Stored events equal delivered notifications, and every call's sequence is
    unbroken."""
    delivered = emulator.control("GET", "/stats")["notifications"]["delivered"]
    assert CallEvent.objects.count() == delivered
    for call in Call.objects.all():
        events_are_whole(call)


def rosters_agree(emulator: RunningEmulator, call: Call) -> int:
    """The present participants (and who is muted) agree with the emulator's view;
    returns how many are present."""
    seen = emulator.control("GET", f"/calls/{call.graph_id}")
    theirs = {p["id"]: p["isMuted"] for p in seen["participantsList"]}
    ours = dict(
        Participant.objects.filter(call=call, left_at__isnull=True).values_list(
            "graph_id", "is_muted"
        )
    )
    assert seen["participants"] == len(theirs)
    assert ours == theirs
    return len(ours)


def test_ivr_operator_the_caller_presses_zero_once_the_bot_listens(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    run = start(emulator, "ivr-operator", speed=10)
    call = answer(quiet_bot, client, first_incoming(quiet_bot))

    client.subscribe_to_tone(call.graph_id)

    pressed = stored_call(call.graph_id, last_tone="tone0")
    emulator.control("DELETE", f"/scenarios/{run}")
    settle(emulator, run)
    assert pressed.state == "established"
    assert pressed.last_tone_sequence == 1
    assert emulator.control("GET", f"/calls/{call.graph_id}")["state"] == "established"
    nothing_lost_nor_doubled(emulator)


def test_standup_eight_people_join_within_the_minute_and_the_roster_agrees(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    run = start(emulator, "standup", speed=30)
    invite = first_incoming(quiet_bot)
    answer(quiet_bot, client, invite)

    settle(emulator, run)

    meeting = Call.objects.get(pk=invite.pk)
    assert meeting.kind == "meeting"
    assert meeting.meeting is not None
    assert meeting.meeting.thread_id.startswith("19:meeting_")
    assert rosters_agree(emulator, meeting) == 9  # eight people and the bot
    assert Participant.objects.filter(call=meeting, is_bot=True).count() == 1

    # Someone leaves once the minute is over: the full roster no longer has them.
    seen = emulator.control("GET", f"/calls/{meeting.graph_id}")
    leaver = next(
        p["id"] for p in seen["participantsList"] if p["id"] != seen["myParticipantId"]
    )
    emulator.control("DELETE", f"/meetings/{seen['meetingId']}/participants/{leaver}")
    wait_until(
        lambda: Participant.objects.filter(
            call=meeting, graph_id=leaver, left_at__isnull=False
        ).exists()
    )
    emulator.wait_idle()
    assert rosters_agree(emulator, meeting) == 8
    assert Participant.objects.get(call=meeting, graph_id=leaver).removed_reason
    nothing_lost_nor_doubled(emulator)


def test_townhall_first_minute_with_delta_rosters_agrees_with_the_emulator(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    run = start(emulator, "townhall", speed=30)
    invite = first_incoming(quiet_bot)
    client.answer(
        invite.graph_id,
        callback_uri=quiet_bot.webhook,
        call_options=CallOptions(is_delta_roster_enabled=True),
    )

    settle(emulator, run, timeout=30)

    townhall = Call.objects.get(pk=invite.pk)
    assert townhall.delta_roster
    # About 500 of the 1,000 arrive in the first of the two minutes.
    assert 300 < rosters_agree(emulator, townhall) < 700
    assert townhall.roster_sequence == (
        CallEvent.objects.filter(call=townhall, resource_kind="participants").count()
    )
    nothing_lost_nor_doubled(emulator)


def test_burst_a_hundred_unanswered_calls_all_end_after_the_answer_window(
    quiet_bot: Callbot,
) -> None:
    emulator = quiet_bot.emulator
    run = start(emulator, "burst", speed=20)

    settle(emulator, run)

    calls = Call.objects.all()
    assert calls.count() == 100
    assert {(c.state, c.result_code, c.result_subcode) for c in calls} == {
        ("terminated", 408, 1106)
    }
    assert CallEvent.objects.count() == 200  # incoming, then deleted
    nothing_lost_nor_doubled(emulator)


def answer_everything_ringing(callbot: Callbot, client: GraphClient) -> None:
    """Answer every call ringing the bot now, as a bot that takes every call would.

    A call may stop ringing between the listing and the answer (the caller gives
    up, Microsoft's timer ends it, or the answer repeats): Graph then says 404 or
    409, which a real bot also shrugs off.
    """
    ringing = callbot.emulator.control("GET", "/calls?state=incoming")["value"]
    for call in ringing:
        with contextlib.suppress(GraphConflictError, GraphNotFoundError):
            client.answer(call["id"], callback_uri=callbot.webhook)


def test_mixed_background_every_call_and_roster_agrees_with_the_emulator(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    run = start(emulator, "mixed", speed=40)

    # Plays the bot until the minute is over: each poll answers what rings.
    wait_until(
        lambda: (
            answer_everything_ringing(quiet_bot, client) or not running(emulator, run)
        ),
        timeout=20,
    )
    settle(emulator, run)

    theirs: dict[str, Any] = {
        c["id"]: c for c in emulator.control("GET", "/calls?ended=1")["value"]
    }
    ours = {c.graph_id: c for c in Call.objects.all()}
    assert set(ours) == set(theirs)
    assert len(ours) >= 5
    for graph_id, call in ours.items():
        assert call.state == theirs[graph_id]["state"], graph_id
        if call.state != "terminated" and theirs[graph_id]["kind"] != "p2p":
            rosters_agree(emulator, call)
    assert any(c.state == "established" for c in ours.values())
    nothing_lost_nor_doubled(emulator)
