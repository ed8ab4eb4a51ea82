"""The cost of answering a call into an IVR flow, pinned: the statements the policy
sends to answer a new call, the worker sends to perform an action, and a step
sends for its commands (bench/ivr_cpu.py measures the CPU these cost). A change
that adds a query to this path, or one per prompt or step of the flow, fails here
rather than in a benchmark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls import perform
from callbot.calls.models import Action, Call
from callbot.calls.states import ActionStatus, CallState
from callbot.ivr import runtime
from callbot.ivr.demo import FLOW_NAME, install_demo
from callbot.ivr.models import IvrFlow, IvrSession
from tests.factories import CallFactory
from tests.support.fake_graph import FakeGraph

pytestmark = pytest.mark.django_db

# apply_policy answering into a flow: the call locked (1), "already decided?"
# (1), the policy with its flow (1), the flow's prompts to prefetch (1), the
# answer requested (a decision under way? 1; the action, the version, the audit
# entry after reading the chain's head and, when the trail is empty, its last
# checkpoint: 5; the board's pending count: 1), the session inserted (1).
ANSWER_INTO_FLOW = 12
# Performing the answer: the claim (1), the claimed action with its call (1),
# "sent" (the call's version locked and read: 1; a guarded UPDATE of the held
# action: 1), the version (1) and the board's pending count (1).
PERFORM = 6
# The step on "established" of a flow starting with a prompt: the call and the
# session locked (2), the tone subscription and the prompt each requested (the
# action, the version, the chain's head, the audit entry, the pending count: 5
# each), the prompt's URI (1), the session's state (1).
ESTABLISHED_STEP = 14
# A flow without a collect step acts on no keys and subscribes to no tones: its
# step costs one request (5 statements) fewer.
REQUEST = 5

# Not a query: PostgreSQL serialises the audit trail's appends with an advisory
# lock (auditmodels.lock_chain); SQLite's write lock does the same at BEGIN.
_LOCKS = ("pg_advisory_xact_lock",)

# The demo's operator menu, and the least a flow can be: one prompt, then hang up
# (no collect step, so no tone subscription).
SHORT_FLOW = [
    {"id": "welcome", "type": "play", "prompt": "welcome", "next": "bye"},
    {"id": "bye", "type": "hang_up"},
]


def statements(work: Callable[[], Any]) -> int:
    """Statements ``work`` sends (transaction control is not counted: SQLite logs
    its BEGIN, savepoints and COMMIT, PostgreSQL only the savepoints)."""
    with CaptureQueriesContext(connection) as queries:
        work()
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "WITH"}
        and not any(lock in q["sql"] for lock in _LOCKS)
    )


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    fake = FakeGraph()
    monkeypatch.setattr("callbot.calls.perform.get_graph_client", lambda: fake)
    return fake


@pytest.mark.parametrize("short", [False, True], ids=["demo-flow", "one-prompt"])
def test_answering_into_a_flow_costs_the_same_statements_whatever_the_flow(
    short: bool,
    graph: FakeGraph,
    django_capture_on_commit_callbacks: Any,
) -> None:
    install_demo(enable_policies=True)
    if short:
        IvrFlow.objects.filter(name=FLOW_NAME).update(start="welcome", steps=SHORT_FLOW)
    call = CallFactory(
        state=CallState.INCOMING,
        targets=[{"identity": {"application": {"id": "bot"}}}],
    )
    # The perform tasks the commits would send are left unsent: each is
    # performed below on its own.
    with django_capture_on_commit_callbacks():
        assert statements(lambda: runtime.apply_policy(call.pk)) == ANSWER_INTO_FLOW
    answer = Action.objects.get(call=call, kind=Action.Kind.ANSWER)
    flow = IvrFlow.objects.get(name=FLOW_NAME).parsed()
    prompts = {step.prompt for step in flow.steps.values() if step.prompt}
    assert len(answer.parameters["prompt_uris"]) == len(prompts)

    assert statements(lambda: perform.perform(answer.pk)) == PERFORM
    assert Action.objects.get(pk=answer.pk).status == ActionStatus.SENT

    Call.objects.filter(pk=call.pk).update(state=CallState.ESTABLISHED)
    with django_capture_on_commit_callbacks():
        step = statements(
            lambda: runtime.handle_activity(
                call.pk, state=CallState.ESTABLISHED, state_changed=True
            )
        )
    assert step == ESTABLISHED_STEP - (REQUEST if short else 0)
    kinds = list(call.actions.order_by("pk").values_list("kind", "parameters__name"))
    listens = [] if short else [("subscribe_to_tone", None)]
    assert kinds == [("answer", None), *listens, ("play_prompt", "welcome")]
    *tones, prompt = call.actions.order_by("pk")[1:]
    session = IvrSession.objects.get(call=call)
    assert (session.current_step, session.phase, session.awaiting_action_id) == (
        "welcome",
        "playing",
        prompt.pk,
    )

    # Performing the tone subscription lets the prompt through, at the same cost.
    for tone in tones:
        assert statements(lambda pk=tone.pk: perform.perform(pk)) == PERFORM
    assert statements(lambda: perform.perform(prompt.pk)) == PERFORM
    assert [r.method for r in graph.requests] == [
        "answer",
        *[kind for kind, _ in listens],
        "play_prompt",
    ]
