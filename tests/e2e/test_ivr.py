"""The bot's own behaviour end to end: the emulator rings Callbot, the call policy
decides, the IVR flow runs on service-hosted media, over real HTTP both ways."""

from __future__ import annotations

from typing import Any

import pytest

from callbot.calls.models import Action, Call
from callbot.ivr import runtime
from callbot.ivr.models import CallPolicy, IvrFlow, IvrSession
from tests.e2e.conftest import Callbot
from tests.support.emulator import wait_until

pytestmark = pytest.mark.e2e

OPERATOR_ID = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"

STEPS: list[dict[str, Any]] = [
    {"id": "welcome", "type": "play", "prompt": "welcome", "next": "menu"},
    {
        "id": "menu",
        "type": "collect",
        "prompt": "menu",
        "timeout": 5,
        "branches": {"1": "message", "0": "operator"},
        "default": "goodbye",
        "on_timeout": "no-input",
    },
    {"id": "no-input", "type": "play", "prompt": "no-input", "next": "goodbye"},
    {"id": "operator", "type": "transfer", "target": "operator"},
    {
        "id": "message",
        "type": "record",
        "prompt": "record-after-beep",
        "max_record_duration": 5,
        "stop_tones": ["#"],
        "next": "goodbye",
    },
    {"id": "goodbye", "type": "play", "prompt": "goodbye", "next": "bye"},
    {"id": "bye", "type": "hang_up"},
]


@pytest.fixture
def bot(callbot: Callbot, settings: Any) -> Callbot:
    """Callbot with one policy: answer peer-to-peer calls into the menu flow."""
    # With REDIS_URL the tasks would wait for a worker; here they run in-process.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.IVR_OPERATOR_USER_ID = OPERATOR_ID
    return callbot


def use_policy(**fields: Any) -> CallPolicy:
    fields.setdefault("name", "test policy")
    fields.setdefault("match", "default")
    return CallPolicy.objects.create(**fields)


def menu_flow() -> IvrFlow:
    return IvrFlow.objects.create(name="menu", start="welcome", steps=STEPS)


def ring(bot: Callbot, caller: dict[str, Any]) -> str:
    call_id: str = bot.emulator.control("POST", "/calls/incoming", {"from": caller})[
        "callId"
    ]
    return call_id


def session_of(call_id: str) -> IvrSession | None:
    return IvrSession.objects.filter(call__graph_id=call_id).first()


def listening_at_menu(call_id: str) -> IvrSession:
    """Wait until the bot answered, subscribed to tones and played the menu."""
    return wait_until(  # type: ignore[no-any-return]
        lambda: IvrSession.objects.filter(
            call__graph_id=call_id, current_step="menu", phase="collecting"
        ).first(),
        timeout=15,
    )


def ended(call_id: str) -> Call:
    return wait_until(  # type: ignore[no-any-return]
        lambda: Call.objects.filter(graph_id=call_id, state="terminated").first(),
        timeout=15,
    )


def test_an_ivr_caller_pressing_zero_reaches_the_operator(bot: Callbot) -> None:
    use_policy(action="answer", flow=menu_flow())
    emulator = bot.emulator
    call_id = ring(bot, {"user": {"displayName": "Ana Lopez"}})

    listening_at_menu(call_id)
    assert emulator.control("GET", f"/calls/{call_id}")["toneSubscribed"] is True

    emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "0"})

    call = ended(call_id)
    emulator.wait_idle()
    # Callbot's side: a transfer to the operator, the session done.
    transfer = Action.objects.get(call=call, kind="transfer")
    assert transfer.parameters["target"]["user_id"] == OPERATOR_ID
    assert transfer.requested_by is None
    session = IvrSession.objects.get(call=call)
    assert (session.status, session.outcome) == ("completed", "transferred to operator")
    assert [h["step"] for h in session.history] == ["welcome", "menu", "operator"]
    assert list(call.actions.order_by("pk").values_list("kind", flat=True)) == [
        "answer",
        "subscribe_to_tone",
        "play_prompt",
        "play_prompt",
        "transfer",
    ]
    assert (call.result_code, call.result_subcode) == (0, 7015)
    # The emulator's side: the call was transferred away gracefully.
    seen = emulator.control("GET", f"/calls/{call_id}")
    assert seen["state"] == "terminated"
    assert (seen["resultInfo"]["code"], seen["resultInfo"]["subcode"]) == (0, 7015)
    events = emulator.control("GET", "/events")
    assert any(
        f"bot transfers call {call_id}" in str(e) for e in events.get("value", events)
    )


def test_a_caller_who_presses_nothing_hears_the_timeout_branch(bot: Callbot) -> None:
    use_policy(action="answer", flow=menu_flow())
    call_id = ring(bot, {"phone": "+14255550123"})
    session = listening_at_menu(call_id)
    assert session.deadline is not None

    # What beat does every second, at the moment the deadline passes.
    assert runtime.sweep_timeouts(session.deadline) == 1

    call = ended(call_id)
    bot.emulator.wait_idle()
    session.refresh_from_db()
    assert [h["step"] for h in session.history] == [
        "welcome",
        "menu",
        "no-input",
        "goodbye",
        "bye",
    ]
    assert (session.status, session.outcome) == ("completed", "no keys pressed")
    played = list(
        call.actions.filter(kind="play_prompt")
        .order_by("pk")
        .values_list("parameters__name", "status")
    )
    assert played == [
        ("welcome", "completed"),
        ("menu", "completed"),
        ("no-input", "completed"),
        ("goodbye", "completed"),
    ]
    assert call.actions.filter(kind="hang_up").exists()
    seen = bot.emulator.control("GET", f"/calls/{call_id}")
    assert (seen["resultInfo"]["code"], seen["resultInfo"]["subcode"]) == (200, 5001)


def test_a_caller_pressing_one_leaves_a_message_and_hears_goodbye(
    bot: Callbot,
) -> None:
    use_policy(action="answer", flow=menu_flow())
    call_id = ring(bot, {"user": {"displayName": "Omar"}})
    listening_at_menu(call_id)

    bot.emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "1"})
    recording = wait_until(
        lambda: Action.objects.filter(
            call__graph_id=call_id,
            kind="record_response",
            status__in=["sent", "completed"],
        ).first(),
        timeout=10,
    )
    assert recording.parameters["prompt_uri"].endswith("record-after-beep.wav")
    # The caller finishes with the stop tone (ignored if the recording already ended).
    bot.emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "#"})

    call = ended(call_id)
    bot.emulator.wait_idle()
    recording.refresh_from_db()
    assert recording.status == "completed"
    session = IvrSession.objects.get(call=call)
    assert [h["step"] for h in session.history][-3:] == ["message", "goodbye", "bye"]
    assert session.status == "completed"


def test_a_call_the_policy_rejects_is_rejected(bot: Callbot) -> None:
    use_policy(action="reject", reject_reason="busy")
    call_id = ring(bot, {"user": {"displayName": "Lee"}})

    call = ended(call_id)
    bot.emulator.wait_idle()
    reject = Action.objects.get(call=call)
    assert (reject.kind, reject.parameters) == ("reject", {"reason": "busy"})
    assert not IvrSession.objects.filter(call=call).exists()
    assert bot.emulator.control("GET", f"/calls/{call_id}")["state"] == "terminated"
    events = bot.emulator.control("GET", "/events")
    assert any(
        f"bot rejected call {call_id} (busy)" in str(e)
        for e in events.get("value", events)
    )


def test_a_call_the_policy_redirects_is_redirected(bot: Callbot) -> None:
    use_policy(action="redirect", target_phone="+14255550100")
    call_id = ring(bot, {"user": {"displayName": "Priya"}})

    call = ended(call_id)
    bot.emulator.wait_idle()
    redirect = Action.objects.get(call=call)
    assert redirect.kind == "redirect"
    assert redirect.parameters["target"]["phone"] == "+14255550100"
    events = bot.emulator.control("GET", "/events")
    assert any(
        f"bot redirected call {call_id}" in str(e) for e in events.get("value", events)
    )
