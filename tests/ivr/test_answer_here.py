"""A worker's IVR task performs the actions it asks for itself, right after the
commit, instead of sending them through the broker to other worker threads
(``enqueue.performing_here``, ``tasks.perform_kept``): the answer is stored
claimed and reaches Graph once, a step's actions go in order, and every way an
attempt can go wrong leaves the action to the broker or the sweep as a message
would.

Transactional: the block must start outside a transaction, as a worker's task
does, and its actions are performed when their transaction commits."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

import pytest

from callbot.calls import enqueue, perform, services
from callbot.calls.models import Action, Call
from callbot.calls.signals import CallActivity
from callbot.calls.states import ActionStatus, CallState
from callbot.calls.tasks import perform_kept
from callbot.graph.errors import GraphThrottledError
from callbot.ivr import tasks
from callbot.ivr.demo import install_demo
from tests.factories import ActionFactory, CallFactory
from tests.ivr.test_answer_queries import (
    ANSWER_INTO_FLOW,
    ESTABLISHED_STEP,
    PERFORM,
    statements,
)
from tests.support.fake_graph import FakeGraph, call_resource

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    fake = FakeGraph()
    monkeypatch.setattr("callbot.calls.perform.get_graph_client", lambda: fake)
    return fake


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The task messages sent to the broker: (name, *args, countdown)."""
    messages: list[tuple[Any, ...]] = []

    def send(name: str, *args: Any, countdown: float | None = None) -> bool:
        messages.append((name, *args, countdown))
        return True

    monkeypatch.setattr(enqueue, "send", send)
    return messages


def ringing() -> Call:
    install_demo(enable_policies=True)
    call: Call = CallFactory(
        state=CallState.INCOMING,
        targets=[{"identity": {"application": {"id": "bot"}}}],
    )
    return call


def new_call(call: Call) -> dict[str, Any]:
    """The message of a new incoming call's activity, as the webhook sends it."""
    return dataclasses.asdict(
        CallActivity(
            call_id=call.pk,
            graph_id=call.graph_id,
            created=True,
            direction="incoming",
            kind=call.kind,
            state="incoming",
            state_changed=False,
        )
    )


def answer_of(call: Call) -> Action:
    return Action.objects.get(call=call, kind=Action.Kind.ANSWER)


def test_the_worker_that_decides_a_call_answers_it_without_the_broker(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    call = ringing()

    # The policy's statements, then the perform's without its claim and the read
    # after it.
    assert statements(
        lambda: tasks.handle_call_activity(new_call(call))
    ) == ANSWER_INTO_FLOW + (PERFORM - 2)

    assert graph.methods() == ["answer"]
    answer = answer_of(call)
    assert (answer.status, answer.attempts, answer.claimed_until) == (
        ActionStatus.SENT,
        1,
        None,
    )
    assert graph.requests[0].client_request_id == str(answer.client_request_id)
    assert sent == []


def test_an_answer_graph_throttles_goes_to_the_broker_with_its_countdown(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    graph.on("answer", GraphThrottledError(429, "TooManyRequests", retry_after=2))
    call = ringing()

    tasks.handle_call_activity(new_call(call))

    answer = answer_of(call)
    assert (answer.status, answer.attempts, answer.claimed_until) == (
        ActionStatus.QUEUED,
        1,
        None,
    )
    assert sent == [(enqueue.PERFORM_ACTION, answer.pk, 2.0)]


def test_an_attempt_that_raises_gives_the_answer_back_to_the_broker(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    graph.on("answer", RuntimeError("a bug in the performer"))
    call = ringing()

    tasks.handle_call_activity(new_call(call))

    answer = answer_of(call)
    assert (answer.status, answer.claimed_until) == (ActionStatus.QUEUED, None)
    assert sent == [(enqueue.PERFORM_ACTION, answer.pk, None)]


@pytest.mark.parametrize("fault", ["throttled", "raises"])
def test_without_a_broker_what_cannot_be_done_now_is_left_for_the_sweep(
    graph: FakeGraph, sent: list[tuple[Any, ...]], fault: str
) -> None:
    """In-process tasks (a supervisor's answer on the embedded default): a send
    would run the task again at once, so the answer stays queued, unclaimed."""
    throttled = GraphThrottledError(429, "TooManyRequests", retry_after=2)
    graph.on("answer", throttled if fault == "throttled" else RuntimeError("bug"))
    call = ringing()

    with enqueue.performing_here(partial(perform_kept, broker=False)):
        services.request_action("answer", actor=None, call=call.pk)

    answer = answer_of(call)
    assert graph.methods() == ["answer"]
    assert (answer.status, answer.attempts, answer.claimed_until) == (
        ActionStatus.QUEUED,
        1,
        None,
    )
    assert sent == []


def test_an_answer_kept_by_a_worker_that_died_is_performed_once_its_claim_lapses(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    call = ringing()
    kept: list[Action] = []
    # The worker dies before its attempt: the answer is stored, queued, claimed.
    with enqueue.performing_here(kept.append):
        services.request_action("answer", actor=None, call=call.pk)
    answer = answer_of(call)
    assert [a.pk for a in kept] == [answer.pk]
    assert (answer.status, answer.attempts) == (ActionStatus.QUEUED, 1)
    assert answer.claimed_until is not None
    assert answer.claimed_until > timezone.now()

    # The sweep's message while the claim holds: nothing is sent to Graph.
    retry = perform.perform(answer.pk)
    assert retry is not None
    assert retry.reason == "claimed by another attempt"
    assert graph.methods() == []

    # Once it lapses, the next attempt looks first: Graph still rings the call.
    Action.objects.filter(pk=answer.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    graph.on("get_call", call_resource(call.graph_id, state="incoming"))
    assert perform.perform(answer.pk) is None
    assert graph.methods() == ["get_call", "answer"]
    answer.refresh_from_db()
    assert (answer.status, answer.attempts) == (ActionStatus.SENT, 2)


def test_inside_a_transaction_actions_are_enqueued_as_usual(
    sent: list[tuple[Any, ...]],
) -> None:
    call = ringing()
    kept: list[Action] = []
    with transaction.atomic(), enqueue.performing_here(kept.append) as here:
        services.request_action("answer", actor=None, call=call.pk)
    answer = answer_of(call)
    assert not here
    assert kept == []
    assert (answer.attempts, answer.claimed_until) == (0, None)
    assert sent == [(enqueue.PERFORM_ACTION, answer.pk, None)]


def test_every_action_kept_here_is_stored_claimed(
    sent: list[tuple[Any, ...]],
) -> None:
    call: Call = CallFactory(state=CallState.ESTABLISHED)
    kept: list[Action] = []
    with enqueue.performing_here(kept.append):
        hang_up = services.request_action("hang_up", actor=None, call=call.pk)
    assert [a.pk for a in kept] == [hang_up.pk]
    hang_up.refresh_from_db()
    assert hang_up.attempts == 1
    assert hang_up.claimed_until is not None
    assert hang_up.claimed_until > timezone.now()
    assert sent == []


def established(call: Call) -> dict[str, Any]:
    Call.objects.filter(pk=call.pk).update(state=CallState.ESTABLISHED)
    return dataclasses.asdict(
        CallActivity(
            call_id=call.pk,
            graph_id=call.graph_id,
            created=False,
            direction="incoming",
            kind=call.kind,
            state="established",
            state_changed=True,
        )
    )


def test_a_step_s_actions_are_performed_here_in_order(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    call = ringing()
    tasks.handle_call_activity(new_call(call))

    message = established(call)

    # The step's statements, then each action's perform: stored claimed, so
    # one read (an earlier action queued?) instead of the claim and the read
    # after it.
    step = statements(lambda: tasks.handle_call_activity(message))
    assert step == ESTABLISHED_STEP + 2 * (PERFORM - 1)
    assert list(call.actions.values_list("attempts", flat=True)) == [1, 1, 1]

    assert graph.methods() == ["answer", "subscribe_to_tone", "play_prompt"]
    statuses = list(call.actions.order_by("pk").values_list("status", flat=True))
    assert statuses == [ActionStatus.SENT] * 3
    assert sent == []


def test_a_step_s_action_behind_an_earlier_queued_one_goes_to_the_broker(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    call = ringing()
    tasks.handle_call_activity(new_call(call))
    # A supervisor's request, queued and not yet taken by a worker.
    earlier = ActionFactory(call=call, kind="mute_bot")

    tasks.handle_call_activity(established(call))

    tone, prompt = call.actions.filter(pk__gt=earlier.pk).order_by("pk")
    assert graph.methods() == ["answer"]
    assert [(a.status, a.attempts) for a in (tone, prompt)] == [
        (ActionStatus.QUEUED, 0),
        (ActionStatus.QUEUED, 0),
    ]
    assert sent == [
        (enqueue.PERFORM_ACTION, tone.pk, 0.05),
        (enqueue.PERFORM_ACTION, prompt.pk, 0.05),
    ]


def test_a_step_s_second_action_waits_for_its_first_handed_to_the_broker(
    graph: FakeGraph, sent: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both are stored claimed; the tone subscription is throttled and goes to
    the broker, still queued, so the prompt is not sent ahead of it: its claim
    is given back uncounted and it follows through the broker."""
    monkeypatch.setattr("callbot.calls.tasks.time.sleep", lambda seconds: None)
    graph.on(
        "subscribe_to_tone", GraphThrottledError(429, "TooManyRequests", retry_after=2)
    )
    call = ringing()
    tasks.handle_call_activity(new_call(call))

    tasks.handle_call_activity(established(call))

    tone, prompt = call.actions.exclude(kind=Action.Kind.ANSWER).order_by("pk")
    assert graph.methods() == ["answer", "subscribe_to_tone"]
    assert [(a.status, a.attempts, a.claimed_until) for a in (tone, prompt)] == [
        (ActionStatus.QUEUED, 1, None),
        (ActionStatus.QUEUED, 0, None),
    ]
    assert sent == [
        (enqueue.PERFORM_ACTION, tone.pk, 2.0),
        (enqueue.PERFORM_ACTION, prompt.pk, 0.05),
    ]


def test_in_process_tasks_perform_a_step_s_actions_stored_claimed(
    graph: FakeGraph, sent: list[tuple[Any, ...]]
) -> None:
    """The embedded default runs the IVR task in-process (eagerly): its actions
    are performed after the commit as a worker's are, stored claimed."""
    call = ringing()
    tasks.handle_call_activity.apply(args=(new_call(call),))
    message = established(call)

    step = statements(lambda: tasks.handle_call_activity.apply(args=(message,)))

    assert step == ESTABLISHED_STEP + 2 * (PERFORM - 1)
    assert graph.methods() == ["answer", "subscribe_to_tone", "play_prompt"]
    assert (
        list(call.actions.values_list("status", "attempts"))
        == [(ActionStatus.SENT, 1)] * 3
    )
    assert sent == []


def test_in_process_a_step_s_action_behind_an_earlier_one_never_waits_here(
    graph: FakeGraph, sent: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One behind an earlier queued action is left for the sweep at once, its
    claim given back uncounted: the thread may be the web process's."""
    slept: list[float] = []
    monkeypatch.setattr("callbot.calls.tasks.time.sleep", slept.append)
    call = ringing()
    tasks.handle_call_activity.apply(args=(new_call(call),))
    earlier = ActionFactory(call=call, kind="mute_bot")

    tasks.handle_call_activity.apply(args=(established(call),))

    tone, prompt = call.actions.filter(pk__gt=earlier.pk).order_by("pk")
    assert graph.methods() == ["answer"]
    assert [(a.status, a.attempts, a.claimed_until) for a in (tone, prompt)] == [
        (ActionStatus.QUEUED, 0, None),
        (ActionStatus.QUEUED, 0, None),
    ]
    assert (slept, sent) == ([], [])
