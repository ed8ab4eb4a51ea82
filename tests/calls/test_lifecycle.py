"""The worker's side of an Action: claims, leases, and the one way to finish."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

import pytest

from callbot.calls import lifecycle
from callbot.calls.models import Action, Call
from tests.factories import CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def group_call() -> Call:
    call = CallFactory(kind="group")
    ParticipantFactory(call=call, is_bot=True, graph_id=call.my_participant_id)
    return call


def test_outcome_moves_only_forward(group_call: Call) -> None:
    action = Action.objects.create(call=group_call, kind="play_prompt")
    lifecycle.record_sent(action.pk, operation_id="Op-1")
    done = lifecycle.record_outcome(
        action.pk, "completed", result_code=200, message="ok"
    )
    assert done is not None
    assert done.status == "completed"
    assert lifecycle.record_outcome(action.pk, "failed") is None
    action.refresh_from_db()
    assert (action.status, action.operation_key) == ("completed", "op1")


def test_a_claimed_action_is_not_claimed_twice_until_its_lease_lapses(
    group_call: Call,
) -> None:
    action = Action.objects.create(call=group_call, kind="mute_bot")

    first = lifecycle.claim_action(action.pk, lease_seconds=60)
    second = lifecycle.claim_action(action.pk, lease_seconds=60)

    assert first is not None
    assert first.attempts == 1
    assert second is None
    assert 0 < (lifecycle.lease_left(action.pk) or 0) <= 60
    Action.objects.filter(pk=action.pk).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    third = lifecycle.claim_action(action.pk, lease_seconds=60)
    assert third is not None
    assert third.attempts == 2


def test_failed_action_explains_itself_in_words(group_call: Call) -> None:
    action = Action.objects.create(call=group_call, kind="invite")
    lifecycle.record_outcome(
        action.pk,
        "failed",
        result_code=403,
        message="Application does not have permission.",
        error_code="graph_403",
    )
    from callbot.calls.live import action_shape

    shape = action_shape(Action.objects.get(pk=action.pk))
    assert shape["message"].startswith(
        "Callbot's app registration lacks the permission"
    )


def test_a_join_whose_call_was_established_before_graph_answered_completes() -> None:
    # The webhook applied "established" while the task still waited for Graph's
    # 201: no action was linked to the call then, so linking it must settle it.
    call = CallFactory(kind="meeting", state="established")
    join = Action.objects.create(kind="join_meeting", parameters={"meeting_id": 1})

    lifecycle.record_sent(join.pk, call=call)

    join.refresh_from_db()
    assert (join.status, join.call) == ("completed", call)


def test_a_placed_call_that_ended_before_graph_answered_fails_with_its_reason() -> None:
    call = CallFactory(
        state="terminated",
        terminated_at=timezone.now(),
        result_code=480,
        result_subcode=10076,
        result_message="Callee unreachable.",
    )
    place = Action.objects.create(kind="place_call")

    lifecycle.record_sent(place.pk, call=call)

    place.refresh_from_db()
    assert (place.status, place.result_code, place.result_message) == (
        "failed",
        480,
        "Callee unreachable.",
    )
