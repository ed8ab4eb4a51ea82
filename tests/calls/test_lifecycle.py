"""The worker's side of an Action: claims, leases, and the one way to finish."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls import lifecycle
from callbot.calls.models import Action, Call
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

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


def test_sent_from_the_held_action_is_one_guarded_update(group_call: Call) -> None:
    """``record_sent`` given the claimed action writes ``sent`` only over
    ``queued``: an action ingest finished meanwhile keeps its outcome, and the
    call's version moves only when the action did."""
    action = Action.objects.create(call=group_call, kind="play_prompt")
    held = lifecycle.claim_action(action.pk, 30)
    assert held is not None
    lifecycle.record_outcome(action.pk, "completed", message="Settled first.")
    version = Call.objects.get(pk=group_call.pk).version
    assert lifecycle.record_sent(held, operation_id="Op-2") is None
    action.refresh_from_db()
    assert (action.status, action.operation_id) == ("completed", "")
    assert Call.objects.get(pk=group_call.pk).version == version

    other = Action.objects.create(call=group_call, kind="play_prompt")
    held = lifecycle.claim_action(other.pk, 30)
    assert held is not None
    sent = lifecycle.record_sent(held, operation_id="Op-3")
    assert sent is held
    other.refresh_from_db()
    assert (other.status, other.operation_key, other.claimed_until) == (
        "sent",
        "op3",
        None,
    )
    assert other.sent_at == held.sent_at
    assert Call.objects.get(pk=group_call.pk).version == version + 1


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


# --- finish: the one way to set a final outcome ---------------------------------------


def snapshot(action: Action) -> dict[str, Any]:
    return {f.attname: getattr(action, f.attname) for f in Action._meta.concrete_fields}


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_finish_sets_exactly_the_fields_of_a_final_outcome(group_call: Call) -> None:
    action = ActionFactory(
        call=group_call,
        attempts=1,
        claimed_until=timezone.now() + timedelta(seconds=60),
        client_context="ctx-1",
    )
    before = snapshot(action)
    now = timezone.now() + timedelta(seconds=1)

    assert lifecycle.finish(
        action,
        "failed",
        now=now,
        result_code=403,
        result_subcode=7504,
        message="Insufficient permission.",
        error_code="graph_403",
        operation_id="Op-9",
    )

    after = snapshot(action)
    assert changed(before, after) == set(lifecycle.FINISH_FIELDS)
    assert {name: after[name] for name in lifecycle.FINISH_FIELDS} == {
        "status": "failed",
        "completed_at": now,
        "sent_at": now,
        "claimed_until": None,
        "result_code": 403,
        "result_subcode": 7504,
        "result_message": "Insufficient permission.",
        "error_code": "graph_403",
        "operation_id": "Op-9",
        "operation_key": "op9",
        "updated_at": now,
    }
    action.save(update_fields=lifecycle.FINISH_FIELDS)
    stored = snapshot(Action.objects.get(pk=action.pk))
    assert changed(after, stored) <= {"updated_at"}  # auto_now stamps the save


def test_finish_keeps_what_was_known_before_it(group_call: Call) -> None:
    sent_at = timezone.now() - timedelta(seconds=30)
    action = ActionFactory(
        call=group_call,
        status="sent",
        sent_at=sent_at,
        operation_id="Op-1",
        result_message="Running.",
        error_code="old",
    )
    before = snapshot(action)
    now = timezone.now()

    assert lifecycle.finish(action, "completed", now=now, operation_id="Op-2")

    assert changed(before, snapshot(action)) == {
        "status",
        "completed_at",
        "result_message",
        "error_code",
        "updated_at",
    }
    assert (action.sent_at, action.operation_id, action.operation_key) == (
        sent_at,
        "Op-1",
        "op1",
    )
    assert (action.result_code, action.result_message, action.error_code) == (
        None,
        "",
        "",
    )


def test_finish_cuts_graphs_words_to_their_columns(group_call: Call) -> None:
    action = ActionFactory(call=group_call)

    lifecycle.finish(
        action,
        "failed",
        now=timezone.now(),
        message="x" * 3000,
        error_code="e" * 100,
        operation_id="o" * 100,
    )
    action.save(update_fields=lifecycle.FINISH_FIELDS)

    stored = Action.objects.get(pk=action.pk)
    assert len(stored.result_message) == 2000
    assert len(stored.error_code) == 64
    assert len(stored.operation_id) == len(stored.operation_key) == 64


@pytest.mark.parametrize("final", ["completed", "failed"])
@pytest.mark.parametrize("status", ["completed", "failed"])
def test_finish_refuses_to_move_a_final_action(
    group_call: Call, final: str, status: str
) -> None:
    done = timezone.now() - timedelta(seconds=5)
    action = ActionFactory(
        call=group_call,
        status=final,
        sent_at=done,
        completed_at=done,
        result_code=200,
        result_message="First outcome.",
    )
    before = snapshot(action)

    assert not lifecycle.finish(
        action, status, now=timezone.now(), result_code=500, message="Late."
    )

    assert snapshot(action) == before


@pytest.mark.parametrize("status", ["queued", "sent", "cancelled"])
def test_finish_sets_only_final_outcomes(group_call: Call, status: str) -> None:
    action = ActionFactory(call=group_call)
    before = snapshot(action)

    with pytest.raises(ValueError, match="final"):
        lifecycle.finish(action, status, now=timezone.now())

    assert snapshot(action) == before
