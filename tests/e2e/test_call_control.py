"""Call control end to end: request_action → task → Graph (the emulator) →
notifications → Callbot's webhook → the Action's outcome, over real sockets.

Tasks run in-process (eager), as on the embedded default.
"""

from __future__ import annotations

from typing import Any

import pytest

from callbot.calls.access import ActionRefusedError
from callbot.calls.models import (
    Action,
    AuditEntry,
    Call,
    Meeting,
    Participant,
    Recording,
)
from callbot.calls.services import request_action
from tests.e2e.conftest import Callbot
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.e2e]

ANA = {
    "user": {"id": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170", "displayName": "Ana Lopez"}
}
LEE = {
    "user": {"id": "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4", "displayName": "Lee Chen"}
}
OPERATOR = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918"


def final(action: Action, timeout: float = 10) -> Action:
    return wait_until(
        lambda: Action.objects.filter(
            pk=action.pk, status__in=["completed", "failed"]
        ).first(),
        timeout=timeout,
    )


def incoming_call(callbot: Callbot, caller: dict[str, Any] = ANA) -> Call:
    graph_id = callbot.emulator.control("POST", "/calls/incoming", {"from": caller})[
        "callId"
    ]
    return wait_until(lambda: Call.objects.filter(graph_id=graph_id).first())


def answered_call(callbot: Callbot) -> Call:
    call = incoming_call(callbot)
    final(request_action("answer", actor=None, call=call))
    return Call.objects.get(pk=call.pk)


def joined_meeting(callbot: Callbot, people: list[dict[str, Any]]) -> Call:
    coords = callbot.emulator.control("POST", "/meetings", {"subject": "Sev2 bridge"})
    meeting = Meeting.objects.create(
        subject="Sev2 bridge",
        join_web_url=coords["joinWebUrl"],
        thread_id=coords["chatInfo"]["threadId"],
        message_id=coords["chatInfo"].get("messageId", "0"),
        organizer_id=coords["meetingInfo"]["organizer"]["user"]["id"],
        tenant_id=coords["meetingInfo"]["organizer"]["user"].get("tenantId", ""),
    )
    for person in people:
        callbot.emulator.control(
            "POST", f"/meetings/{coords['id']}/participants", person
        )
    join = final(
        request_action("join_meeting", actor=None, params={"meeting_id": meeting.pk})
    )
    assert join.status == "completed", join.result_message
    call = Call.objects.get(pk=join.call_id)
    wait_until(
        lambda: (
            Participant.objects.filter(
                call=call, left_at__isnull=True, is_bot=False
            ).count()
            == len(people)
        )
    )
    return Call.objects.get(pk=call.pk)


def test_bot_answers_an_incoming_call_and_the_answer_completes_when_established(
    callbot: Callbot,
) -> None:
    call = incoming_call(callbot)

    answer = final(request_action("answer", actor=None, call=call))

    assert answer.status == "completed"
    call.refresh_from_db()
    assert call.state == "established"
    seen = callbot.emulator.control("GET", f"/calls/{call.graph_id}")
    assert seen["state"] == "established"
    assert AuditEntry.objects.filter(
        action="answer", outcome="requested", detail__action_id=answer.pk
    ).exists()


def test_supervisor_mutes_a_meeting_participant_and_the_roster_shows_it(
    callbot: Callbot, bob: Any
) -> None:
    call = joined_meeting(callbot, [{**ANA, "muted": False}, {**LEE, "muted": False}])
    lee = Participant.objects.get(call=call, identity_id=LEE["user"]["id"])

    mute = final(
        request_action(
            "mute_participant", actor=bob, call=call, participant_id=lee.graph_id
        )
    )

    assert mute.status == "completed"
    wait_until(lambda: Participant.objects.get(pk=lee.pk).is_muted)
    assert AuditEntry.objects.filter(
        actor=bob, action="mute_participant", outcome="requested"
    ).exists()


def test_hang_up_completes_when_the_call_terminates(callbot: Callbot) -> None:
    call = answered_call(callbot)

    hang_up = final(request_action("hang_up", actor=None, call=call))

    assert hang_up.status == "completed"
    call.refresh_from_db()
    assert call.state == "terminated"


def test_action_on_a_terminated_call_is_refused_with_a_clear_error(
    callbot: Callbot, bob: Any
) -> None:
    call = answered_call(callbot)
    final(request_action("hang_up", actor=None, call=call))

    with pytest.raises(ActionRefusedError) as refused:
        request_action("mute_bot", actor=bob, call=call)

    assert refused.value.code == "call_ended"
    assert "ended" in refused.value.message
    assert AuditEntry.objects.filter(actor=bob, outcome="refused").exists()
    assert not Action.objects.filter(call=call, kind="mute_bot").exists()


def test_invite_escalates_a_peer_to_peer_call_to_a_group_call(
    callbot: Callbot,
) -> None:
    call = answered_call(callbot)
    assert call.kind == "peer_to_peer"

    invite = final(
        request_action(
            "invite",
            actor=None,
            call=call,
            params={"target": {"user_id": OPERATOR, "display_name": "Operator"}},
        )
    )

    assert invite.status == "completed", invite.result_message
    wait_until(
        lambda: Participant.objects.filter(
            call=call, identity_id=OPERATOR, left_at__isnull=True
        ).exists()
    )
    assert Call.objects.get(pk=call.pk).kind == "group"


def test_mute_under_a_429_storm_completes_exactly_once(
    callbot: Callbot, bob: Any
) -> None:
    call = joined_meeting(callbot, [{**ANA, "muted": False}, {**LEE, "muted": False}])
    ana = Participant.objects.get(call=call, identity_id=ANA["user"]["id"])
    emulator = callbot.emulator
    emulator.control(
        "POST",
        "/faults",
        {"graph_429": {"count": 4, "retry_after": 0, "match": "/mute"}},
    )
    before = mute_requests(emulator)

    mute = final(
        request_action(
            "mute_participant", actor=bob, call=call, participant_id=ana.graph_id
        ),
        timeout=20,
    )

    assert mute.status == "completed"
    requests = mute_requests(emulator)[len(before) :]
    assert [r["status"] for r in requests] == [429, 429, 429, 429, 200]
    assert len({r["clientRequestId"] for r in requests}) == 1
    wait_until(lambda: Participant.objects.get(pk=ana.pk).is_muted)


def mute_requests(emulator: Any) -> list[dict[str, Any]]:
    return [
        r
        for r in emulator.control("GET", "/requests")["value"]
        if r["method"] == "POST" and r["path"].endswith("/mute")
    ]


def test_recorded_response_is_fetched_and_kept(
    callbot: Callbot, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    call = answered_call(callbot)

    record = final(
        request_action(
            "record_response",
            actor=None,
            call=call,
            params={"max_record_duration": 3, "play_beep": False},
        )
    )

    assert record.status == "completed", record.result_message
    recording = wait_until(lambda: Recording.objects.filter(action=record).first())
    assert recording.call == call
    data = recording.audio.read()
    assert data[:4] == b"RIFF"
    assert recording.size == len(data)


def test_hold_music_puts_a_participant_on_hold_and_takes_them_off(
    callbot: Callbot, bob: Any
) -> None:
    call = joined_meeting(callbot, [{**ANA, "muted": False}, {**LEE, "muted": False}])
    lee = Participant.objects.get(call=call, identity_id=LEE["user"]["id"])

    hold = final(
        request_action(
            "start_hold_music", actor=bob, call=call, participant_id=lee.graph_id
        )
    )
    assert hold.status == "completed", hold.result_message
    assert Participant.objects.get(pk=lee.pk).on_hold

    unhold = final(
        request_action(
            "stop_hold_music", actor=bob, call=call, participant_id=lee.graph_id
        )
    )
    assert unhold.status == "completed", unhold.result_message
    assert not Participant.objects.get(pk=lee.pk).on_hold
