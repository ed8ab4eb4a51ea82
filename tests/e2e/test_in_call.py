"""Supervisors' in-call work end to end through request_action against the
emulator: blind and consultative transfers, placing calls to a user and to a
phone number, escalating a placed call by inviting a second person, and joining
a meeting by its short link or by meeting id and passcode."""

from __future__ import annotations

from typing import Any

import pytest

from callbot.calls.live import action_message
from callbot.calls.models import Action, Call, Participant
from callbot.calls.services import request_action, request_join
from tests.e2e.conftest import Callbot
from tests.e2e.test_call_control import LEE, answered_call, final
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.e2e]

LEE_ID = LEE["user"]["id"]
SAM_ID = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"


def placed_call(bob: Any, target: dict[str, str]) -> Call:
    place = final(request_action("place_call", actor=bob, params={"target": target}))
    assert place.status == "completed", place.message
    return Call.objects.get(pk=place.call_id)


def test_a_blind_transfer_hands_the_caller_over_and_ends_the_bots_leg(
    callbot: Callbot, bob: Any
) -> None:
    call = answered_call(callbot)

    transfer = final(
        request_action(
            "transfer", actor=bob, call=call, params={"target": {"user_id": LEE_ID}}
        )
    )

    assert transfer.status == "completed", transfer.message
    call.refresh_from_db()
    assert call.state == "terminated"
    assert (call.result_code or 0, call.result_subcode) in ((0, 7015), (200, 7015))
    seen = callbot.emulator.control("GET", f"/calls/{call.graph_id}")
    assert seen["state"] == "terminated"


def test_a_consultative_transfer_replaces_the_bots_call_with_the_target(
    callbot: Callbot, bob: Any
) -> None:
    with_caller = answered_call(callbot)
    with_target = placed_call(bob, {"user_id": LEE_ID, "display_name": "Lee Chen"})

    transfer = final(
        request_action(
            "transfer",
            actor=bob,
            call=with_caller,
            params={"consult_call": with_target.pk},
        )
    )

    assert transfer.status == "completed", transfer.message
    assert transfer.parameters["replaces_call_id"] == with_target.graph_id
    wait_until(
        lambda: (
            set(
                Call.objects.filter(
                    pk__in=[with_caller.pk, with_target.pk]
                ).values_list("state", flat=True)
            )
            == {"terminated"}
        )
    )


def test_a_transfer_teams_fails_says_why_in_words(callbot: Callbot, bob: Any) -> None:
    call = answered_call(callbot)
    callbot.emulator.control("POST", "/faults", {"transfer_failure": {"count": 1}})

    transfer = final(
        request_action(
            "transfer", actor=bob, call=call, params={"target": {"user_id": LEE_ID}}
        )
    )

    assert transfer.status == "failed"
    assert (transfer.result_code, transfer.result_subcode) == (500, 7000)
    assert action_message(transfer).startswith(
        "The transfer target did not take the call"
    )
    assert Call.objects.get(pk=call.pk).state == "established"


def test_placing_a_call_to_a_user_then_inviting_a_second_person_escalates_it(
    callbot: Callbot, bob: Any
) -> None:
    call = placed_call(bob, {"user_id": LEE_ID, "display_name": "Lee Chen"})
    assert (call.kind, call.state, call.direction) == (
        "peer_to_peer",
        "established",
        "outgoing",
    )

    invite = final(
        request_action(
            "invite",
            actor=bob,
            call=call,
            params={"target": {"user_id": SAM_ID, "display_name": "Sam"}},
        )
    )

    assert invite.status == "completed", invite.message
    wait_until(lambda: Call.objects.get(pk=call.pk).kind == "group")
    wait_until(
        lambda: Participant.objects.filter(
            call=call, identity_id=SAM_ID, left_at__isnull=True
        ).exists()
    )


def test_placing_a_call_to_a_phone_number_sends_the_application_instance(
    callbot: Callbot, bob: Any
) -> None:
    call = placed_call(bob, {"phone": "+14255550123"})

    seen = callbot.emulator.control("GET", f"/calls/{call.graph_id}")
    assert "applicationInstance" in seen["source"]["identity"]
    assert Call.objects.get(pk=call.pk).state == "established"


def test_the_party_of_another_call_is_moved_into_a_group_call(
    callbot: Callbot, bob: Any
) -> None:
    group = placed_call(bob, {"user_id": LEE_ID})
    final(
        request_action(
            "invite", actor=bob, call=group, params={"target": {"user_id": SAM_ID}}
        )
    )
    caller = answered_call(callbot)

    move = final(
        request_action(
            "invite", actor=bob, call=group, params={"replaces_call": caller.pk}
        )
    )

    assert move.status == "completed", move.message
    assert move.parameters["replaces_call_id"] == caller.graph_id
    wait_until(lambda: Call.objects.get(pk=caller.pk).state == "terminated")


@pytest.mark.parametrize("by", ["short link", "id and passcode"])
def test_a_meeting_is_joined_by_its_short_link_or_its_id_and_passcode(
    callbot: Callbot, bob: Any, by: str
) -> None:
    meeting = callbot.emulator.control(
        "POST", "/meetings", {"subject": "Sev2 bridge", "passcodeRequired": True}
    )
    join_id, passcode = meeting["joinMeetingId"], meeting["passcode"]
    assert passcode
    params = (
        {"join_web_url": f"https://teams.microsoft.com/meet/{join_id}?p={passcode}"}
        if by == "short link"
        else {"join_meeting_id": join_id, "passcode": passcode}
    )

    joined = request_join(actor=bob, params=params)

    assert joined.action is not None
    join = final(joined.action)
    assert join.status == "completed", join.message
    call = Call.objects.get(pk=join.call_id)
    assert call.meeting_id == joined.meeting.pk
    assert call.state == "established"
    # Graph named the meeting's thread on the way: the same meeting, not a twin.
    assert Call.objects.get(pk=call.pk).meeting.join_meeting_id == join_id

    again = request_join(actor=bob, params=params)
    assert again.action is None
    assert [c.pk for c in again.already_in] == [call.pk]


def test_a_wrong_passcode_fails_the_join(callbot: Callbot, bob: Any) -> None:
    meeting = callbot.emulator.control(
        "POST", "/meetings", {"subject": "Locked", "passcodeRequired": True}
    )

    joined = request_join(
        actor=bob,
        params={"join_meeting_id": meeting["joinMeetingId"], "passcode": "wrong1"},
    )

    assert joined.action is not None
    assert final(joined.action).status == "failed"
    assert not Action.objects.filter(kind="join_meeting", status="completed").exists()
