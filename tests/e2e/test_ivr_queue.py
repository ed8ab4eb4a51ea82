"""The demo "operator" flow's option 0 end to end: the caller is queued for the
supervisors with hold music, then taken by one, or transferred to the operator when
nobody takes the call in time; over real HTTP both ways with the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from callbot.calls.models import Action, AuditEntry, Call
from callbot.ivr import runtime, supervisors
from callbot.ivr.demo import install_demo
from callbot.ivr.models import IvrSession
from tests.e2e.conftest import Callbot
from tests.e2e.test_ivr import OPERATOR_ID, ended, listening_at_menu, ring
from tests.support.emulator import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def bot(callbot: Callbot, settings: Any) -> Callbot:
    """Callbot with the demo installed: peer-to-peer calls go into its menu."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.IVR_OPERATOR_USER_ID = OPERATOR_ID
    install_demo(enable_policies=True)
    return callbot


def queued_with_music(bot: Callbot) -> tuple[str, IvrSession]:
    """Ring, press 0 at the menu, and wait until the hold music plays in the queue."""
    call_id = ring(bot, {"user": {"displayName": "Ana Lopez"}})
    listening_at_menu(call_id)
    bot.emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "0"})
    wait_until(
        lambda: Action.objects.filter(
            call__graph_id=call_id,
            kind="play_prompt",
            target="hold-music",
            status__in=("sent", "completed"),
        ).exists(),
        timeout=15,
    )
    session = IvrSession.objects.get(call__graph_id=call_id)
    assert (session.current_step, session.phase) == ("queue", "queued")
    return call_id, session


def test_a_queued_caller_a_supervisor_takes_stays_in_the_call(
    bot: Callbot, bob: Any
) -> None:
    call_id, session = queued_with_music(bot)
    waiting = Call.objects.get(graph_id=call_id)
    assert waiting.waiting_since is not None

    taken = supervisors.take_call(waiting.pk, actor=bob)
    wait_until(
        lambda: Action.objects.get(pk=taken[0].pk).status == "completed", timeout=15
    )
    bot.emulator.wait_idle()

    session.refresh_from_db()
    assert (session.status, session.outcome) == ("completed", "taken by bob")
    call = Call.objects.get(pk=waiting.pk)
    assert (call.state, call.waiting_since) == ("established", None)
    assert AuditEntry.objects.filter(call=call, actor=bob, action="take").exists()
    assert not call.actions.filter(kind="transfer").exists()
    assert [h["step"] for h in session.history] == [
        "welcome",
        "menu",
        "connecting",
        "queue",
    ]


def test_a_queued_caller_nobody_takes_is_transferred_to_the_operator(
    bot: Callbot,
) -> None:
    call_id, session = queued_with_music(bot)
    assert session.deadline is not None

    # What beat does every second, at the moment the minute's wait is over.
    assert runtime.sweep_timeouts(session.deadline) == 1

    call = ended(call_id)
    bot.emulator.wait_idle()
    session.refresh_from_db()
    assert (session.status, session.outcome) == ("completed", "transferred to operator")
    assert [h["step"] for h in session.history][-2:] == ["queue", "operator"]
    transfer = Action.objects.get(call=call, kind="transfer")
    assert transfer.parameters["target"]["user_id"] == OPERATOR_ID
    assert call.actions.filter(kind="cancel_media_processing").exists()
    assert call.waiting_since is None
    seen = bot.emulator.control("GET", f"/calls/{call_id}")
    assert (seen["resultInfo"]["code"], seen["resultInfo"]["subcode"]) == (0, 7015)
