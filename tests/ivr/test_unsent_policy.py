"""A ringing call whose policy task the broker refused (Redis away) is written
down by the receiver and decided by ``decide_unsent_calls`` once the broker is
back: once, while it still rings."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls.models import Action, Call
from callbot.calls.signals import CallActivity
from callbot.calls.states import CallState
from callbot.ivr import receivers, tasks, unsent
from callbot.ivr.models import CallPolicy, Handoff, IvrSession, UnsentPolicy
from tests.factories import CallFactory
from tests.ivr.conftest import tasks_eager
from tests.ivr.test_runtime import bot_target

pytestmark = pytest.mark.django_db


def ringing(call_id: int, **changes: Any) -> CallActivity:
    item = CallActivity(
        call_id=call_id,
        graph_id="g",
        created=True,
        direction="incoming",
        kind="peer_to_peer",
        state="incoming",
        state_changed=True,
    )
    return dataclasses.replace(item, **changes)


def rejecting_policy() -> None:
    CallPolicy.objects.create(
        name="busy", match="default", action="reject", reject_reason="busy"
    )


def ringing_call() -> Any:
    return CallFactory(state=CallState.INCOMING, targets=bot_target())


def test_a_ringing_call_whose_task_the_broker_refused_is_written_down(
    broker_refuses: list[dict[str, Any]],
) -> None:
    call = ringing_call()
    other = CallFactory(state=CallState.ESTABLISHED)

    receivers.on_call_activity(
        None,
        [
            ringing(call.pk),
            # Not a decision to make: its tones are held apart (test_held_activity).
            ringing(other.pk, created=False, state="established", tones=("1",)),
        ],
    )

    assert len(broker_refuses) == 2
    assert list(UnsentPolicy.objects.values_list("call_id", flat=True)) == [call.pk]
    # The webhook redelivering the same batch writes it down once.
    receivers.on_call_activity(None, [ringing(call.pk)])
    assert UnsentPolicy.objects.count() == 1


def test_a_task_that_failed_in_eager_mode_is_not_written_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = ringing_call()

    def delay(activity: dict[str, Any]) -> None:
        raise RuntimeError("the policy itself failed")

    monkeypatch.setattr(tasks.handle_call_activity, "delay", delay)
    with tasks_eager(True):
        receivers.on_call_activity(None, [ringing(call.pk)])

    assert not UnsentPolicy.objects.exists()


def test_the_sweep_decides_an_unsent_call_once(
    broker_refuses: list[dict[str, Any]],
) -> None:
    rejecting_policy()
    call = ringing_call()
    receivers.on_call_activity(None, [ringing(call.pk)])

    assert unsent.decide_unsent() == 1

    assert list(Action.objects.filter(call=call).values_list("kind", flat=True)) == [
        "reject"
    ]
    assert not UnsentPolicy.objects.exists()
    # Written down again (a redelivered batch) or the task delivered after all:
    # the call is decided already, nothing more is asked for.
    UnsentPolicy.objects.create(call=call)
    assert unsent.decide_unsent() == 0
    tasks.handle_call_activity.apply(args=[dataclasses.asdict(ringing(call.pk))])
    assert Action.objects.filter(call=call).count() == 1
    assert not UnsentPolicy.objects.exists()


def test_a_call_that_stopped_ringing_is_only_forgotten() -> None:
    rejecting_policy()
    call = CallFactory(state=CallState.TERMINATED, targets=bot_target())
    UnsentPolicy.objects.create(call=call)

    assert unsent.decide_unsent() == 0

    assert not Action.objects.filter(call=call).exists()
    assert not UnsentPolicy.objects.exists()


def test_the_sweep_task_runs_the_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks.unsent, "decide_unsent", lambda: 3)

    assert tasks.decide_unsent_calls.apply().get() == 3


# --- a task the broker took and lost ---------------------------------------------


def arrived(seconds_ago: float) -> Any:
    call = ringing_call()
    Call.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return call


def test_a_call_still_ringing_undecided_after_the_grace_is_decided_once(
    settings: Any,
) -> None:
    """The task was accepted (nothing was written down) and never ran: Redis
    restarted with it queued. The sweep decides the call, and only that call."""
    settings.IVR_POLICY_LOST_AFTER_SECONDS = 3
    rejecting_policy()
    lost = arrived(4)
    just_rung = arrived(1)  # its task may simply not have run yet
    gone_long_ago = arrived(120)  # Graph ended it long since; its end was not heard

    assert unsent.lost_call_ids(timezone.now()) == [lost.pk]
    assert unsent.decide_unsent() == 1

    assert list(Action.objects.filter(call=lost).values_list("kind", flat=True)) == [
        "reject"
    ]
    assert not Action.objects.filter(call__in=[just_rung, gone_long_ago]).exists()
    # The next tick, and the task if it turns up after all, find it decided.
    assert unsent.lost_call_ids(timezone.now()) == []
    assert unsent.decide_unsent() == 0
    tasks.handle_call_activity.apply(args=[dataclasses.asdict(ringing(lost.pk))])
    assert Action.objects.filter(call=lost).count() == 1


def test_calls_handed_to_supervisors_or_in_a_flow_are_not_taken_as_lost(
    settings: Any,
) -> None:
    settings.IVR_POLICY_LOST_AFTER_SECONDS = 3
    handed = arrived(5)
    policy = CallPolicy.objects.create(
        name="people",
        match="default",
        action="supervisors",
        fallback="reject",
        max_wait_seconds=10,
    )
    Handoff.objects.create(call=handed, policy=policy, wait_until=timezone.now())
    in_flow = arrived(5)
    IvrSession.objects.create(call=in_flow, flow_start="menu", flow_steps=[])
    no_policy_yet = arrived(5)
    policy.delete()

    assert unsent.lost_call_ids(timezone.now()) == [no_policy_yet.pk]
    # No policy matches it: asked again each tick, nothing requested meanwhile.
    assert unsent.decide_unsent() == 0
    assert not Action.objects.filter(call=no_policy_yet).exists()
