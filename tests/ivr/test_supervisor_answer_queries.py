"""The cost of a supervisor's Answer, pinned: the statements the click's
transaction sends (answering to hold, the board's default), and those the worker
sends before the answer request leaves for Graph. Each is a round trip the click
waits for on PostgreSQL (bench/incoming_latency.py measures the whole path); a
change that adds one fails here rather than in a benchmark."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls import deciding, perform, services
from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, Call
from callbot.calls.states import ActionStatus
from callbot.ivr import supervisors
from callbot.ivr.models import IvrSession
from tests.ivr.test_answer_queries import statements
from tests.ivr.test_runtime import incoming_call
from tests.support.fake_graph import FakeGraph, operation

pytestmark = pytest.mark.django_db

# Answering to hold, as read afresh for the click: the actor's permissions (the
# user's and the groups', in one statement: 1), the call locked (1), "a decision
# under way?" (1, asked once: the answer requested under the same lock with no
# action queued since does not ask again), "a flow running already?" (1), the
# hold music's prompt (1), the answer requested (the action, the version, the
# board's pending count, the chain's head, the audit entry: 5), the session
# inserted (1), the call marked waiting with its version (1).
HOLD_ANSWER = 12
# The worker, claim to request: the claim (1), the claimed action with its call,
# participant and requester (1).
BEFORE_GRAPH = 2


def test_answering_to_hold_costs_the_pinned_statements(
    bob: User, django_capture_on_commit_callbacks: Any
) -> None:
    # A call answered before: the audit trail is not empty (its first entry
    # also reads the last checkpoint).
    supervisors.answer_into_flow(incoming_call().pk, supervisors.HOLD, actor=bob)
    call = incoming_call()
    actor = User.objects.get(pk=bob.pk)  # the click reads the user afresh

    with django_capture_on_commit_callbacks():
        sent = statements(
            lambda: supervisors.answer_into_flow(call.pk, supervisors.HOLD, actor=actor)
        )

    assert sent == HOLD_ANSWER
    # What those statements stored: the answer, the hold flow running, the call
    # held for a person, two versions past the ring's (the answer, the hold).
    answer = Action.objects.get(call=call)
    assert (answer.kind, answer.status, answer.requested_by_id) == (
        Action.Kind.ANSWER,
        ActionStatus.QUEUED,
        bob.pk,
    )
    session = IvrSession.objects.get(call=call)
    assert session.status == IvrSession.Status.RUNNING
    held = Call.objects.get(pk=call.pk)
    assert held.waiting_since is not None
    assert held.version == call.version + 2


def test_answering_to_hold_returns_the_answer_it_queued(bob: User) -> None:
    call = incoming_call()

    returned = supervisors.answer_into_flow(call.pk, supervisors.HOLD, actor=bob)

    stored = Action.objects.get(call=call)
    assert returned.pk == stored.pk
    assert (returned.kind, returned.call_id, returned.requested_by_id) == (
        Action.Kind.ANSWER,
        call.pk,
        bob.pk,
    )


def test_a_supervisors_answer_reaches_graph_after_two_statements(
    bob: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = FakeGraph()
    monkeypatch.setattr("callbot.calls.perform.get_graph_client", lambda: graph)
    call = incoming_call()
    answer = supervisors.answer_into_flow(call.pk, supervisors.HOLD, actor=bob)
    seen: list[int] = []

    with CaptureQueriesContext(connection) as queries:

        def answered(arguments: dict[str, Any]) -> Any:
            seen.append(
                sum(
                    1
                    for q in queries.captured_queries
                    if q["sql"].split(None, 1)[0].upper() in {"SELECT", "UPDATE"}
                )
            )
            return operation("running", "op-answer")

        graph.on("answer", answered)
        assert perform.perform(answer.pk) is None

    assert seen == [BEFORE_GRAPH]
    assert Action.objects.get(pk=answer.pk).status == ActionStatus.SENT


def test_a_decision_queued_after_the_check_is_still_found() -> None:
    # The second "decision under way?" is skipped only while the call's version
    # is the one checked: a decision queued meanwhile advances it.
    call = incoming_call()
    with transaction.atomic():
        locked = Call.objects.select_for_update().get(pk=call.pk)
        with deciding.undecided(locked, "answer"):
            deciding.still_ringing(locked, "answer")  # no query: just checked
            services.request_action(
                Action.Kind.REJECT, actor=None, call=locked, call_locked=True
            )
            with pytest.raises(ActionRefusedError, match="already deciding"):
                deciding.still_ringing(locked, "answer")
