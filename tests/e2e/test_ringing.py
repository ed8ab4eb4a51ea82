"""Ringing calls decided by supervisors, and the two requests Graph refuses without
an identity, end to end: ``request_action`` (or the IVR's supervisor entry points)
→ task → the emulator → notifications → Callbot's webhook, over real sockets."""

from __future__ import annotations

import time
from typing import Any

import pytest

from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, AuditEntry, Call, Participant, RedirectTarget
from callbot.calls.services import request_action
from callbot.ivr import supervisors
from callbot.ivr.models import CallPolicy, Handoff, IvrFlow, IvrSession
from tests.e2e.conftest import Callbot
from tests.e2e.test_call_control import ANA, LEE, final, incoming_call, joined_meeting
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.e2e]

LEE_ID = LEE["user"]["id"]


def events(callbot: Callbot) -> str:
    seen = callbot.emulator.control("GET", "/events")
    return str(seen.get("value", seen) if isinstance(seen, dict) else seen)


def test_a_supervisor_answers_a_ringing_call(callbot: Callbot, bob: Any) -> None:
    call = incoming_call(callbot)

    answer = final(request_action("answer", actor=bob, call=call))

    assert answer.status == "completed"
    assert answer.requested_by == bob
    assert Call.objects.get(pk=call.pk).state == "established"
    assert callbot.emulator.control("GET", f"/calls/{call.graph_id}")["state"] == (
        "established"
    )


def test_a_supervisor_rejects_a_ringing_call_as_busy(
    callbot: Callbot, bob: Any
) -> None:
    call = incoming_call(callbot)

    reject = final(
        request_action("reject", actor=bob, call=call, params={"reason": "busy"})
    )

    assert reject.status == "completed"
    assert Call.objects.get(pk=call.pk).state == "terminated"
    assert f"bot rejected call {call.graph_id} (busy)" in events(callbot)


def test_a_supervisor_redirects_a_ringing_call_to_a_saved_target(
    callbot: Callbot, bob: Any
) -> None:
    desk = RedirectTarget.objects.create(name="Service desk", kind="user", value=LEE_ID)
    call = incoming_call(callbot)

    redirect = final(
        request_action(
            "redirect", actor=bob, call=call, params={"saved_target": desk.pk}
        )
    )

    assert redirect.status == "completed"
    assert redirect.parameters["target"] == {
        "user_id": LEE_ID,
        "display_name": "Service desk",
    }
    assert redirect.target == "Service desk"
    assert Call.objects.get(pk=call.pk).state == "terminated"
    assert f"bot redirected call {call.graph_id}" in events(callbot)


def test_a_second_decision_on_the_same_ringing_call_is_refused(
    callbot: Callbot, bob: Any, alice: Any
) -> None:
    call = incoming_call(callbot)
    request_action("answer", actor=bob, call=call)

    # The answer may still be pending or done; either way the call is decided.
    with pytest.raises(ActionRefusedError) as refused:
        request_action("reject", actor=alice, call=call, params={"reason": "busy"})

    assert refused.value.code == "wrong_state"
    wait_until(lambda: Call.objects.get(pk=call.pk).state == "established")


def test_a_supervisor_answers_a_ringing_call_into_the_operator_flow(
    callbot: Callbot, bob: Any, demo_ivr: None
) -> None:
    # As on a real tenant: the demo's policies off, the call rings undecided.
    CallPolicy.objects.all().delete()
    flow = IvrFlow.objects.get(name="operator")
    call = incoming_call(callbot)

    answer = final(supervisors.answer_into_flow(call.pk, flow.pk, actor=bob))

    assert answer.status == "completed"
    assert answer.requested_by == bob
    session = wait_until(
        lambda: IvrSession.objects.filter(call=call, current_step="menu").first(),
        timeout=15,
    )
    assert session.flow == flow
    assert session.policy is None
    # After the answer, the flow goes on as the bot.
    later = Action.objects.filter(call=call).exclude(kind="answer")
    assert later.exists()
    assert not later.filter(requested_by__isnull=False).exists()


def test_placing_a_call_to_a_phone_sends_the_application_instance(
    callbot: Callbot, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = callbot.emulator.config.bot.instance_id

    place = final(
        request_action(
            "place_call", actor=None, params={"target": {"phone": "+14255550123"}}
        )
    )

    # The emulator refuses a call to a phone without the instance as its source.
    assert place.status == "completed", place.result_message
    with callbot.emulator.graph() as graph:
        seen = graph.get(f"/communications/calls/{place.call.graph_id}").json()
    assert seen["source"]["identity"]["applicationInstance"]["id"] == (
        callbot.emulator.config.bot.instance_id
    )


def test_a_call_to_a_phone_is_refused_without_an_application_instance(
    callbot: Callbot, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""

    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            "place_call", actor=None, params={"target": {"phone": "+14255550123"}}
        )

    assert refused.value.code == "unsupported"
    assert "GRAPH_APPLICATION_INSTANCE_ID" in refused.value.message
    assert not Action.objects.filter(kind="place_call").exists()


def test_transferring_a_meeting_participant_names_the_transferee(
    callbot: Callbot, bob: Any
) -> None:
    call = joined_meeting(callbot, [ANA])
    ana = Participant.objects.get(call=call, identity_id=ANA["user"]["id"])

    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            "transfer", actor=bob, call=call, params={"target": {"user_id": LEE_ID}}
        )
    transfer = final(
        request_action(
            "transfer",
            actor=bob,
            call=call,
            params={"target": {"user_id": LEE_ID}, "transferee": ana.graph_id},
        )
    )

    assert refused.value.code == "invalid"
    assert "transferee" in refused.value.message
    assert transfer.status == "completed", transfer.result_message
    assert transfer.parameters["transferee"]["participant_id"] == ana.graph_id
    assert f"bot transfers call {call.graph_id}" in events(callbot)


def _hand_off_policy(**fields: Any) -> CallPolicy:
    return CallPolicy.objects.create(
        name="supervisors first",
        match="default",
        action="supervisors",
        max_wait_seconds=1,
        **fields,
    )


def test_a_hand_off_nobody_takes_falls_back_to_its_policy(callbot: Callbot) -> None:
    _hand_off_policy(fallback="reject", reject_reason="busy")
    call = incoming_call(callbot)
    handoff = wait_until(lambda: Handoff.objects.filter(call=call).first())
    # The board counts down to the fallback and says what it is.
    handed = Call.objects.get(pk=call.pk)
    assert (handed.wait_ends_at, handed.wait_then) == (
        handoff.wait_until,
        "reject (busy)",
    )

    # Before the wait is over the sweep leaves it ringing for the supervisors.
    assert supervisors.sweep_handoffs() == 0
    assert Call.objects.get(pk=call.pk).state == "incoming"
    time.sleep(max(0.0, (handoff.wait_until - call.created_at).total_seconds()))
    wait_until(lambda: supervisors.sweep_handoffs() == 1, timeout=5)

    handoff.refresh_from_db()
    assert (handoff.status, handoff.outcome) == ("fell_back", "rejected")
    wait_until(lambda: Call.objects.get(pk=call.pk).state == "terminated")
    assert f"bot rejected call {call.graph_id} (busy)" in events(callbot)


def test_a_hand_off_a_supervisor_answers_is_left_alone(
    callbot: Callbot, bob: Any
) -> None:
    _hand_off_policy(fallback="reject")
    call = incoming_call(callbot)
    handoff = wait_until(lambda: Handoff.objects.filter(call=call).first())

    final(request_action("answer", actor=bob, call=call))
    time.sleep(max(0.0, (handoff.wait_until - call.created_at).total_seconds()))

    assert supervisors.sweep_handoffs() == 0
    handoff.refresh_from_db()
    assert handoff.status in ("decided", "ended")
    assert Call.objects.get(pk=call.pk).state == "established"
    assert not Action.objects.filter(call=call, kind="reject").exists()


def test_a_held_call_plays_music_until_a_supervisor_takes_it(
    callbot: Callbot, bob: Any, alice: Any
) -> None:
    call = incoming_call(callbot)

    answer = final(supervisors.answer_into_flow(call.pk, "hold", actor=bob))
    # The music plays (Graph took the playPrompt) before anybody takes the call.
    music = wait_until(
        lambda: Action.objects.filter(
            call=call, kind="play_prompt", target="hold-music", status="sent"
        ).first()
    )
    waiting = Call.objects.get(pk=call.pk)
    taken = supervisors.take_call(call.pk, actor=alice)
    with pytest.raises(ActionRefusedError) as again:
        supervisors.take_call(call.pk, actor=bob)

    assert answer.status == "completed"
    assert waiting.state == "established"
    assert waiting.waiting_since is not None
    assert music.parameters["uri"].endswith("/hold-music.wav")
    assert [a.kind for a in taken] == ["cancel_media_processing"]
    assert final(taken[0]).status == "completed"
    assert Call.objects.get(pk=call.pk).waiting_since is None
    session = IvrSession.objects.get(call=call)
    assert (session.status, session.outcome) == ("completed", "taken by alice")
    assert again.value.code == "wrong_state"
    assert AuditEntry.objects.filter(actor=alice, action="take").exists()
