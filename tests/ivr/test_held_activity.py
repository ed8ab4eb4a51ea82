"""IVR activity other than a ring (a tone, a prompt finished, the call ended)
whose task the broker refused (Redis away) is held in the database and handled
once the broker is back: by ``decide_unsent_calls``, or first by whatever next
moves the call's flow (its next task, the timeout sweep), in the order it
happened, once."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls.models import Action
from callbot.calls.signals import CallActivity
from callbot.ivr import receivers, runtime, tasks, unsent
from callbot.ivr.models import HeldActivity, IvrFlow, IvrSession
from tests.ivr.conftest import tasks_eager
from tests.ivr.test_runtime import MENU, answered_at_menu, incoming_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def menu_flow() -> IvrFlow:
    return IvrFlow.objects.create(name="menu", start="menu", steps=MENU)


def activity(call_id: int, **changes: Any) -> CallActivity:
    item = CallActivity(
        call_id=call_id,
        graph_id="g",
        created=False,
        direction="incoming",
        kind="peer_to_peer",
        state="established",
        state_changed=False,
    )
    return dataclasses.replace(item, **changes)


def kinds(call: Any) -> list[str]:
    return list(call.actions.order_by("pk").values_list("kind", flat=True))


def test_a_tone_the_broker_refused_is_held_and_handled_once_it_is_back(
    menu_flow: IvrFlow,
    broker_refuses: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    before = kinds(call)

    with caplog.at_level(logging.INFO, logger="callbot.ivr"):
        receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])

        assert len(broker_refuses) == 1
        # Nothing moved yet, nothing lost: the tone waits in the database.
        assert kinds(call) == before
        [held] = HeldActivity.objects.all()
        assert (held.call_id, held.activity["tones"]) == (call.pk, ["0"])
        assert IvrSession.objects.get(call=call).held
        said = [r.getMessage() for r in caplog.records]
        assert any(
            f"activity of call {call.pk}" in m
            and "held" in m
            and "will be handled when the broker is back" in m
            for m in said
        ), said
        assert not any("could not handle" in m for m in said), said

        # The broker is back: beat's sweep handles it.
        assert unsent.decide_unsent() == 0
        handled = [
            r.getMessage() for r in caplog.records if "handled" in r.getMessage()
        ]

    assert kinds(call) == [*before, "transfer"]
    session = IvrSession.objects.get(call=call)
    assert (session.current_step, session.phase, session.held) == (
        "operator",
        "transferring",
        False,
    )
    assert session.path == " menu menu:0 operator "
    assert not HeldActivity.objects.exists()
    assert any(f"activity of call {call.pk}" in m for m in handled), handled

    # Once: the next ticks find nothing held, the flow moves no further.
    unsent.decide_unsent()
    assert kinds(call) == [*before, "transfer"]


def test_held_activity_is_handled_in_the_order_it_happened(
    menu_flow: IvrFlow, broker_refuses: list[dict[str, Any]]
) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)

    receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])
    receivers.on_call_activity(
        None, [activity(call.pk, state="terminated", terminated=True)]
    )
    assert HeldActivity.objects.count() == 2

    unsent.decide_unsent()

    # The key first (a transfer), then the end (the transfer's success); the
    # other way round the caller would have hung up in the menu.
    session = IvrSession.objects.get(call=call)
    assert session.status == "completed"
    assert session.outcome.startswith("transferred to ")
    assert not HeldActivity.objects.exists()


def test_the_next_task_of_the_call_handles_what_was_held_before_its_own(
    menu_flow: IvrFlow, broker_refuses: list[dict[str, Any]]
) -> None:
    """The broker is back and the caller presses 9 before beat's sweep ran: the
    0 held during the outage is handled first, and only once."""
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])

    tasks.handle_call_activity.apply(
        args=[dataclasses.asdict(activity(call.pk, tones=("9",)))]
    )

    session = IvrSession.objects.get(call=call)
    assert (session.current_step, session.phase) == ("operator", "transferring")
    assert session.path == " menu menu:0 operator "
    assert kinds(call).count("transfer") == 1
    assert not HeldActivity.objects.exists()
    # The sweep after it finds nothing left to do.
    unsent.decide_unsent()
    assert kinds(call).count("transfer") == 1
    assert IvrSession.objects.get(call=call).path == " menu menu:0 operator "


def test_the_timeout_sweep_handles_a_held_tone_before_the_timeout(
    menu_flow: IvrFlow, broker_refuses: list[dict[str, Any]]
) -> None:
    """The caller pressed 0 in time; the broker came back after the collect
    step's deadline: the key, not the timeout, decides."""
    call = incoming_call()
    session = answered_at_menu(call, menu_flow)
    assert session.deadline is not None
    receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])

    runtime.sweep_timeouts(session.deadline + timedelta(seconds=30))

    session.refresh_from_db()
    assert (session.current_step, session.outcome) == ("operator", "pressed 0")
    assert "no-input" not in session.path
    assert not HeldActivity.objects.exists()


def test_held_activity_of_a_call_no_longer_in_a_flow_is_forgotten(
    menu_flow: IvrFlow, broker_refuses: list[dict[str, Any]]
) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    IvrSession.objects.filter(call=call).update(status="ended")
    before = kinds(call)
    receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])
    assert HeldActivity.objects.count() == 1

    unsent.decide_unsent(timezone.now())

    assert kinds(call) == before
    assert not HeldActivity.objects.exists()


def test_nothing_is_held_when_tasks_run_in_process(
    menu_flow: IvrFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default: the task runs right here, its failure is its own,
    not the broker's; the activity is not held (nothing would ever be sent)."""
    call = incoming_call()
    answered_at_menu(call, menu_flow)

    def delay(activity: dict[str, Any]) -> None:
        raise RuntimeError("the step itself failed")

    monkeypatch.setattr(tasks.handle_call_activity, "delay", delay)
    with tasks_eager(True):
        receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])

    assert not HeldActivity.objects.exists()
    assert not IvrSession.objects.get(call=call).held


def test_in_process_tasks_move_the_flow_as_before(menu_flow: IvrFlow) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    with tasks_eager(True):
        receivers.on_call_activity(None, [activity(call.pk, tones=("0",))])

    assert kinds(call)[-1] == "transfer"
    assert Action.objects.filter(call=call, kind="transfer").count() == 1
    assert not HeldActivity.objects.exists()
