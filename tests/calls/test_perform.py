"""One attempt at an action (``perform.perform``) against a scripted Graph: claims,
ordering, retries, failures in Graph's words, and looking before sending again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls import live, perform, performers, tasks
from callbot.calls.meetings import store_online_meeting
from callbot.calls.models import Action, Call, Meeting, Participant
from callbot.calls.perform import RetryLater
from callbot.graph.errors import (
    GraphAuthError,
    GraphBadRequestError,
    GraphConflictError,
    GraphError,
    GraphForbiddenError,
    GraphNotFoundError,
    GraphThrottledError,
    GraphTransientError,
)
from tests.factories import (
    ActionFactory,
    CallFactory,
    MeetingFactory,
    ParticipantFactory,
)
from tests.support.fake_graph import (
    FakeGraph,
    call_resource,
    online_meeting_resource,
    operation,
    participant_resource,
)

pytestmark = pytest.mark.django_db

PROMPT = "https://bot.example.net/prompts/welcome.wav"


@pytest.fixture
def group_call() -> Call:
    call = CallFactory(kind="group")
    ParticipantFactory(call=call, is_bot=True, graph_id=call.my_participant_id)
    return call


@pytest.fixture
def lee(group_call: Call) -> Participant:
    return ParticipantFactory(call=group_call, display_name="Lee Chen")


def prompt(call: Call, **fields: Any) -> Action:
    return ActionFactory(
        call=call, kind="play_prompt", parameters={"uri": PROMPT}, **fields
    )


def reload(action: Action) -> Action:
    return Action.objects.get(pk=action.pk)


def an_earlier_attempt_died(action: Action) -> None:
    """The action was claimed once and its worker died before recording anything."""
    Action.objects.filter(pk=action.pk).update(
        attempts=1, claimed_until=timezone.now() - timedelta(seconds=1)
    )


# --- sending once ---------------------------------------------------------------------


def test_a_claimed_action_is_sent_once_and_recorded_as_sent(
    graph: FakeGraph, group_call: Call
) -> None:
    action = prompt(group_call)
    graph.on("play_prompt", operation("running", "Op-7"))

    assert perform.perform(action.pk) is None
    assert perform.perform(action.pk) is None  # a redelivered message

    assert graph.methods() == ["play_prompt"]
    request = graph.requests[0]
    assert request.client_request_id == str(action.client_request_id)
    assert request.args["call_id"] == group_call.graph_id
    assert request.tenant == group_call.tenant_id
    done = reload(action)
    assert (done.status, done.attempts, done.claimed_until) == ("sent", 1, None)
    assert (done.operation_id, done.operation_key) == ("Op-7", "op7")
    assert done.sent_at is not None
    assert done.completed_at is None
    assert Call.objects.get(pk=group_call.pk).version == group_call.version + 1


def test_an_operation_graph_answers_completed_is_final_at_once(
    graph: FakeGraph, group_call: Call
) -> None:
    action = ActionFactory(call=group_call, kind="mute_bot")
    graph.on("mute", operation("completed", "op-1", code=200, message="Success."))

    assert perform.perform(action.pk) is None

    done = reload(action)
    assert (done.status, done.result_code, done.result_message) == (
        "completed",
        200,
        "Success.",
    )
    assert done.operation_id == "op-1"
    assert done.completed_at is not None
    assert graph.methods() == ["mute"]


def test_a_final_action_is_not_sent_again(graph: FakeGraph, group_call: Call) -> None:
    now = timezone.now()
    action = prompt(group_call, status="completed", sent_at=now, completed_at=now)

    assert perform.perform(action.pk) is None

    assert graph.requests == []
    assert reload(action).attempts == 0


def test_an_action_that_is_gone_is_not_retried(graph: FakeGraph) -> None:
    assert perform.perform(987654) is None
    assert graph.requests == []


def test_an_action_claimed_by_another_worker_comes_back_when_the_lease_lapses(
    graph: FakeGraph, group_call: Call
) -> None:
    until = timezone.now() + timedelta(seconds=20)
    action = prompt(group_call, attempts=1, claimed_until=until)

    retry = perform.perform(action.pk)

    assert isinstance(retry, RetryLater)
    assert retry.reason == "claimed by another attempt"
    assert 19 < retry.countdown <= 20.5
    assert graph.requests == []
    left = reload(action)
    assert (left.status, left.attempts, left.claimed_until) == ("queued", 1, until)


# --- order within a call --------------------------------------------------------------


def test_an_action_waits_for_an_earlier_queued_action_of_its_call(
    graph: FakeGraph, group_call: Call
) -> None:
    first = prompt(group_call)
    second = prompt(group_call)

    assert perform.perform(second.pk) == RetryLater(
        countdown=0.05, reason="an earlier action is queued", in_order=True
    )
    assert graph.requests == []
    waiting = reload(second)
    assert (waiting.status, waiting.claimed_until) == ("queued", None)

    perform.perform(first.pk)
    perform.perform(second.pk)

    assert [r.client_request_id for r in graph.requests] == [
        str(first.client_request_id),
        str(second.client_request_id),
    ]
    assert reload(second).status == "sent"


def test_the_worker_waits_in_its_thread_while_another_performs_the_earlier_action(
    graph: FakeGraph, group_call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prompt(group_call)
    second = prompt(group_call)
    retry = perform.perform(second.pk)
    sleeps: list[float] = []

    def another_worker_meanwhile(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            perform.perform(first.pk)

    monkeypatch.setattr(tasks.time, "sleep", another_worker_meanwhile)
    assert retry is not None

    assert tasks._wait_for_earlier(second.pk, retry) is None
    assert sleeps == [0.05, 0.05]
    assert graph.methods() == ["play_prompt", "play_prompt"]
    assert graph.requests[1].client_request_id == str(second.client_request_id)
    assert (reload(second).status, reload(second).attempts) == ("sent", 1)


def test_the_worker_hands_the_action_back_to_the_broker_after_a_few_rounds(
    graph: FakeGraph, group_call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt(group_call)
    second = prompt(group_call)
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: None)
    retry = perform.perform(second.pk)
    assert retry is not None

    assert tasks._wait_for_earlier(second.pk, retry) == retry
    assert graph.requests == []
    assert (reload(second).status, reload(second).attempts) == ("queued", 0)


def test_a_retry_for_another_reason_is_not_waited_for_in_the_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: pytest.fail("slept"))
    throttled = RetryLater(countdown=2.0, reason="throttled")

    assert tasks._wait_for_earlier(1, throttled) is throttled


def test_an_earlier_action_stuck_longer_than_a_lease_does_not_hold_the_next_back(
    graph: FakeGraph, group_call: Call
) -> None:
    stuck = prompt(group_call)
    Action.objects.filter(pk=stuck.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    other_call = prompt(CallFactory())
    action = prompt(group_call)

    assert perform.perform(action.pk) is None
    assert reload(action).status == "sent"
    assert reload(other_call).status == "queued"


def test_waiting_for_an_earlier_action_is_not_counted_as_an_attempt(
    graph: FakeGraph, group_call: Call, lee: Participant
) -> None:
    # Only a claim that may have reached Graph is an attempt: a waiting action must
    # keep its whole retry budget and must not look at Graph as if it were retried.
    first = prompt(group_call)
    mute = ActionFactory(
        call=group_call,
        kind="mute_participant",
        participant=lee,
        parameters={"participant_id": lee.graph_id},
    )
    for _ in range(3):
        assert isinstance(perform.perform(mute.pk), RetryLater)

    perform.perform(first.pk)
    perform.perform(mute.pk)

    assert graph.methods() == ["play_prompt", "mute_participant"]
    assert reload(mute).attempts == 1


def test_an_action_that_waited_keeps_its_retries(
    graph: FakeGraph, group_call: Call, settings: Any
) -> None:
    settings.ACTION_MAX_ATTEMPTS = 3
    first = prompt(group_call)
    second = prompt(group_call)
    for _ in range(3):
        perform.perform(second.pk)
    perform.perform(first.pk)
    graph.on("play_prompt", GraphThrottledError(429, "TooManyRequests", retry_after=1))

    retry = perform.perform(second.pk)

    assert isinstance(retry, RetryLater)
    assert retry.countdown == 1
    assert reload(second).status == "queued"


# --- retryable errors -----------------------------------------------------------------


def test_throttling_gives_the_action_back_and_honours_retry_after(
    graph: FakeGraph, group_call: Call
) -> None:
    action = prompt(group_call)
    throttled = GraphThrottledError(
        429, "TooManyRequests", "Slow down.", retry_after=7.5
    )
    graph.on("play_prompt", throttled)

    assert perform.perform(action.pk) == RetryLater(
        countdown=7.5, reason=str(throttled)
    )

    left = reload(action)
    assert (left.status, left.attempts, left.claimed_until) == ("queued", 1, None)
    assert left.result_message == ""


def test_without_retry_after_retries_back_off_to_half_a_minute(
    graph: FakeGraph, group_call: Call, settings: Any
) -> None:
    settings.ACTION_MAX_ATTEMPTS = 10
    action = prompt(group_call)
    graph.on("play_prompt", GraphTransientError(503, "ServiceUnavailable"))

    countdowns = []
    for _ in range(7):
        retry = perform.perform(action.pk)
        assert retry is not None
        countdowns.append(retry.countdown)

    assert countdowns == [1, 2, 4, 8, 16, 30, 30]
    assert len({r.client_request_id for r in graph.requests}) == 1


def test_after_the_last_attempt_a_retryable_error_fails_in_graphs_words(
    graph: FakeGraph, group_call: Call, settings: Any
) -> None:
    settings.ACTION_MAX_ATTEMPTS = 3
    action = prompt(group_call)
    graph.on(
        "play_prompt",
        GraphTransientError(503, "ServiceUnavailable", "The service is busy."),
    )

    outcomes = [perform.perform(action.pk) for _ in range(3)]

    assert [type(o).__name__ for o in outcomes] == [
        "RetryLater",
        "RetryLater",
        "NoneType",
    ]
    assert graph.methods() == ["play_prompt"] * 3
    failed = reload(action)
    assert (failed.status, failed.attempts, failed.claimed_until) == ("failed", 3, None)
    assert (failed.result_code, failed.error_code) == (503, "graph_5xx")
    assert failed.result_message == "The service is busy."
    assert failed.completed_at is not None
    assert live.action_message(failed) == (
        "Microsoft Graph was unavailable: The service is busy."
    )
    assert perform.perform(action.pk) is None
    assert len(graph.requests) == 3


@pytest.mark.parametrize(
    ("error", "result_code", "error_code"),
    [
        (GraphThrottledError(429, "TooManyRequests", "Throttled."), 429, "graph_429"),
        (GraphTransientError(502, "BadGateway", "Bad gateway."), 502, "graph_5xx"),
        (GraphTransientError(0, "", "Connection refused."), None, "transport"),
        (
            GraphAuthError(401, "", "Token endpoint down.", retryable=True),
            401,
            "graph_401",
        ),
    ],
    ids=["throttled", "5xx", "transport", "token-endpoint-down"],
)
def test_a_retryable_error_has_a_stable_error_code_once_retries_run_out(
    graph: FakeGraph,
    group_call: Call,
    settings: Any,
    error: GraphError,
    result_code: int | None,
    error_code: str,
) -> None:
    settings.ACTION_MAX_ATTEMPTS = 2
    action = prompt(group_call)
    graph.on("play_prompt", error)

    assert isinstance(perform.perform(action.pk), RetryLater)
    assert perform.perform(action.pk) is None

    failed = reload(action)
    assert (failed.status, failed.result_code, failed.error_code) == (
        "failed",
        result_code,
        error_code,
    )
    assert failed.result_message == error.message


# --- permanent errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "error_code"),
    [
        (GraphBadRequestError(400, "BadRequest", "Media is app-hosted."), "graph_400"),
        (GraphAuthError(401, "InvalidAuthenticationToken", "Bad token."), "graph_401"),
        (GraphForbiddenError(403, "Forbidden", "No permission."), "graph_403"),
        (GraphNotFoundError(404, "NotFound", "Call not found."), "graph_404"),
        (GraphConflictError(409, "Conflict", "Not established."), "graph_409"),
    ],
    ids=["400", "401", "403", "404", "409"],
)
def test_a_permanent_error_fails_the_action_at_once(
    graph: FakeGraph, group_call: Call, error: GraphError, error_code: str
) -> None:
    action = prompt(group_call)
    graph.on("play_prompt", error)

    assert perform.perform(action.pk) is None

    assert graph.methods() == ["play_prompt"]
    failed = reload(action)
    assert (failed.status, failed.attempts, failed.claimed_until) == ("failed", 1, None)
    assert (failed.result_code, failed.error_code) == (error.status, error_code)
    assert failed.result_message == error.message
    assert live.action_message(failed).endswith(f": {error.message}")


def test_a_stored_action_graph_cannot_be_asked_for_fails_as_invalid(
    graph: FakeGraph, group_call: Call
) -> None:
    no_uri = ActionFactory(call=group_call, kind="play_prompt", parameters={})
    meeting = MeetingFactory()
    join = ActionFactory(
        call=None, kind="join_meeting", parameters={"meeting_id": meeting.pk}
    )
    meeting.delete()

    assert perform.perform(no_uri.pk) is None
    assert perform.perform(join.pk) is None

    assert graph.requests == []
    for action in (no_uri, join):
        failed = reload(action)
        assert (failed.status, failed.error_code) == ("failed", "invalid")


# --- looking before sending again -----------------------------------------------------


def test_a_first_attempt_sends_without_looking(
    graph: FakeGraph, group_call: Call, lee: Participant
) -> None:
    action = ActionFactory(
        call=group_call,
        kind="mute_participant",
        participant=lee,
        parameters={"participant_id": lee.graph_id},
    )

    perform.perform(action.pk)

    assert graph.methods() == ["mute_participant"]


def test_a_retried_mute_of_someone_already_muted_completes_without_resending(
    graph: FakeGraph, group_call: Call, lee: Participant
) -> None:
    action = ActionFactory(
        call=group_call,
        kind="mute_participant",
        participant=lee,
        parameters={"participant_id": lee.graph_id},
    )
    an_earlier_attempt_died(action)
    graph.on("get_participant", participant_resource(lee.graph_id, muted=True))

    assert perform.perform(action.pk) is None

    assert graph.methods() == ["get_participant"]
    look = graph.requests[0]
    assert look.args["participant_id"] == lee.graph_id
    assert look.client_request_id == str(action.client_request_id)
    done = reload(action)
    assert (done.status, done.attempts) == ("completed", 2)
    assert done.result_message == "Done (confirmed after a retry)."


def test_a_retried_mute_of_someone_still_unmuted_is_sent_again_with_the_same_id(
    graph: FakeGraph, group_call: Call, lee: Participant
) -> None:
    action = ActionFactory(
        call=group_call,
        kind="mute_participant",
        participant=lee,
        parameters={"participant_id": lee.graph_id},
    )
    an_earlier_attempt_died(action)
    graph.on("get_participant", participant_resource(lee.graph_id, muted=False))

    perform.perform(action.pk)

    assert graph.methods() == ["get_participant", "mute_participant"]
    assert {r.client_request_id for r in graph.requests} == {
        str(action.client_request_id)
    }
    assert reload(action).status == "sent"


@pytest.mark.parametrize(
    ("state", "methods", "status"),
    [
        (
            GraphNotFoundError(404, "NotFound", "Call not found."),
            ["get_call"],
            "completed",
        ),
        ("terminating", ["get_call"], "completed"),
        ("established", ["get_call", "delete_call"], "sent"),
    ],
    ids=["call-gone", "terminating", "still-up"],
)
def test_a_retried_hang_up_looks_at_the_call_first(
    graph: FakeGraph,
    group_call: Call,
    state: str | GraphError,
    methods: list[str],
    status: str,
) -> None:
    action = ActionFactory(call=group_call, kind="hang_up")
    an_earlier_attempt_died(action)
    graph.on(
        "get_call",
        state
        if isinstance(state, GraphError)
        else call_resource(group_call.graph_id, state),
    )

    assert perform.perform(action.pk) is None

    assert graph.methods() == methods
    assert reload(action).status == status


def test_a_retried_answer_of_a_call_already_answered_is_recorded_as_sent(
    graph: FakeGraph,
) -> None:
    call = CallFactory(state="incoming")
    action = ActionFactory(call=call, kind="answer")
    an_earlier_attempt_died(action)
    graph.on("get_call", call_resource(call.graph_id, "established"))

    perform.perform(action.pk)

    assert graph.methods() == ["get_call"]
    assert reload(action).status == "sent"


def test_a_retried_removal_of_someone_gone_completes(
    graph: FakeGraph, group_call: Call, lee: Participant
) -> None:
    action = ActionFactory(
        call=group_call,
        kind="remove_participant",
        participant=lee,
        parameters={"participant_id": lee.graph_id},
    )
    an_earlier_attempt_died(action)
    graph.on("get_participant", GraphNotFoundError(404, "NotFound"))

    perform.perform(action.pk)

    assert graph.methods() == ["get_participant"]
    assert reload(action).status == "completed"


def test_a_retried_invite_of_someone_already_in_the_call_completes(
    graph: FakeGraph, group_call: Call
) -> None:
    user = "5b8e9c1a-2f3d-4e5a-9b6c-7d8e9f0a1b2c"
    action = ActionFactory(
        call=group_call,
        kind="invite",
        parameters={"target": {"user_id": user, "display_name": "Ana"}},
    )
    an_earlier_attempt_died(action)
    graph.on("list_participants", [participant_resource("p-1", user_id=user.upper())])

    perform.perform(action.pk)

    assert graph.methods() == ["list_participants"]
    assert reload(action).status == "completed"


@pytest.mark.parametrize(
    ("kind", "bot_muted", "methods", "status"),
    [
        ("mute_bot", True, ["get_participant"], "completed"),
        ("mute_bot", False, ["get_participant", "mute"], "sent"),
        ("unmute_bot", False, ["get_participant"], "completed"),
    ],
)
def test_a_retried_bot_mute_looks_at_the_bot_first(
    graph: FakeGraph,
    group_call: Call,
    kind: str,
    bot_muted: bool,
    methods: list[str],
    status: str,
) -> None:
    action = ActionFactory(call=group_call, kind=kind)
    an_earlier_attempt_died(action)
    graph.on(
        "get_participant",
        participant_resource(group_call.my_participant_id, muted=bot_muted),
    )

    perform.perform(action.pk)

    assert graph.methods() == methods
    assert graph.requests[0].args["participant_id"] == group_call.my_participant_id
    assert reload(action).status == status


def test_a_look_that_fails_is_retried_like_the_request(
    graph: FakeGraph, group_call: Call
) -> None:
    action = ActionFactory(call=group_call, kind="hang_up")
    an_earlier_attempt_died(action)
    graph.on("get_call", GraphTransientError(503, "ServiceUnavailable"))

    assert isinstance(perform.perform(action.pk), RetryLater)

    assert graph.methods() == ["get_call"]
    left = reload(action)
    assert (left.status, left.attempts, left.claimed_until) == ("queued", 2, None)


# --- calls, transfers and meetings an earlier attempt may have made -------------------

ANA = "5b8e9c1a-2f3d-4e5a-9b6c-7d8e9f0a1b2c"
LEE = "0c7d6e5f-4a3b-4c2d-9e1f-8a7b6c5d4e3f"
PHONE = "+14255550100"


def place(kind: str = "place_call", **params: Any) -> Action:
    """A place action as the service stores it: no call yet."""
    if kind == "place_call":
        params = params or {"target": {"user_id": ANA, "display_name": "Ana"}}
    action: Action = ActionFactory(call=None, kind=kind, parameters=params)
    return action


def stored_by_the_webhook(**fields: Any) -> Call:
    """A call the webhook stored from notifications alone: an outgoing call's say
    only its state, so no direction, kind, targets or meeting."""
    call: Call = CallFactory(
        **{"direction": "unknown", "state": "established", "targets": [], **fields}
    )
    return call


def graph_shows(graph: FakeGraph, calls: dict[str, list[str]]) -> None:
    """Graph's view of live calls by id (their targets); any other call is gone."""

    def get_call(args: dict[str, Any]) -> Any:
        if args["call_id"] not in calls:
            raise GraphNotFoundError(404, "NotFound", "Call not found.")
        return call_resource(
            args["call_id"], "established", targets=calls[args["call_id"]]
        )

    graph.on("get_call", get_call)


def test_a_retried_place_call_links_the_call_the_earlier_attempt_placed(
    graph: FakeGraph,
) -> None:
    action = place()
    someone_else = stored_by_the_webhook()
    earlier = stored_by_the_webhook()
    an_earlier_attempt_died(action)
    graph_shows(graph, {someone_else.graph_id: [LEE], earlier.graph_id: [ANA]})

    assert perform.perform(action.pk) is None

    assert graph.methods() == ["get_call", "get_call"]
    assert [r.args["call_id"] for r in graph.requests] == [
        someone_else.graph_id,
        earlier.graph_id,
    ]
    assert {r.client_request_id for r in graph.requests} == {
        str(action.client_request_id)
    }
    done = reload(action)
    # Linked, and settled by the call's state as a first attempt's would be.
    assert done.call_id == earlier.pk
    assert (done.status, done.result_message) == ("completed", "Established.")
    linked = Call.objects.get(pk=earlier.pk)
    assert (linked.direction, linked.kind) == ("outgoing", "peer_to_peer")
    assert linked.targets == [{"user_id": ANA, "display_name": "Ana"}]
    assert Call.objects.get(pk=someone_else.pk).actions.count() == 0


def test_a_retried_group_call_links_the_call_with_the_same_targets(
    graph: FakeGraph,
) -> None:
    targets = [{"user_id": ANA, "display_name": ""}, {"phone": PHONE}]
    action = place("place_group_call", targets=targets, subject="Ops")
    fewer = stored_by_the_webhook()
    earlier = stored_by_the_webhook(state="establishing")
    an_earlier_attempt_died(action)
    graph_shows(graph, {fewer.graph_id: [ANA], earlier.graph_id: [PHONE, ANA]})

    perform.perform(action.pk)

    assert "place_group_call" not in graph.methods()
    done = reload(action)
    assert (done.call_id, done.status) == (earlier.pk, "sent")
    linked = Call.objects.get(pk=earlier.pk)
    assert (linked.kind, linked.subject, linked.targets) == ("group", "Ops", targets)


def test_a_retried_place_call_looks_only_at_new_unclaimed_outgoing_calls(
    graph: FakeGraph,
) -> None:
    before = stored_by_the_webhook()
    action = place()
    Call.objects.filter(pk=before.pk).update(
        created_at=action.created_at - timedelta(seconds=1)
    )
    stored_by_the_webhook(direction="incoming")
    stored_by_the_webhook(state="terminated")
    stored_by_the_webhook(meeting=MeetingFactory())
    taken = stored_by_the_webhook()
    ActionFactory(
        call=taken, kind="place_call", parameters={"target": {"user_id": ANA}}
    )
    an_earlier_attempt_died(action)
    graph_shows(graph, {})

    perform.perform(action.pk)

    # None of them could be the earlier attempt's call: placed again, same id.
    assert graph.methods() == ["place_peer_to_peer_call"]
    assert graph.requests[0].client_request_id == str(action.client_request_id)
    assert reload(action).status == "sent"


def test_a_retried_place_call_passes_over_a_call_that_has_ended_at_graph(
    graph: FakeGraph,
) -> None:
    action = place()
    gone = stored_by_the_webhook()
    an_earlier_attempt_died(action)
    graph_shows(graph, {})

    perform.perform(action.pk)

    assert graph.methods() == ["get_call", "place_peer_to_peer_call"]
    assert graph.requests[0].args["call_id"] == gone.graph_id
    assert reload(action).call_id != gone.pk


def test_a_call_another_place_action_took_is_not_linked_twice() -> None:
    first, second = place(), place()
    call = stored_by_the_webhook()
    resource = call_resource(call.graph_id, "established", targets=[ANA])

    assert performers.link_placed_call(first, resource) is True
    assert performers.link_placed_call(second, resource) is False

    assert reload(first).call_id == call.pk
    assert (reload(second).call_id, reload(second).status) == (None, "queued")


@pytest.mark.parametrize(
    ("graph_says", "methods", "status"),
    [
        ("transferring", ["get_call"], "sent"),
        ("transfer_accepted", ["get_call"], "sent"),
        ("terminated", ["get_call"], "completed"),
        (GraphNotFoundError(404, "NotFound"), ["get_call"], "completed"),
        ("established", ["get_call", "transfer"], "sent"),
    ],
    ids=["transferring", "accepted", "terminated", "call-gone", "not-yet"],
)
def test_a_retried_transfer_looks_at_the_call_first(
    graph: FakeGraph,
    graph_says: str | GraphError,
    methods: list[str],
    status: str,
) -> None:
    call = CallFactory()
    action = ActionFactory(
        call=call, kind="transfer", parameters={"target": {"user_id": ANA}}
    )
    an_earlier_attempt_died(action)
    graph.on(
        "get_call",
        graph_says
        if isinstance(graph_says, GraphError)
        else call_resource(call.graph_id, graph_says.replace("_a", "A")),
    )

    perform.perform(action.pk)

    assert graph.methods() == methods
    assert graph.requests[0].client_request_id == str(action.client_request_id)
    assert reload(action).status == status


def test_a_retried_meeting_creation_gets_the_meeting_the_earlier_attempt_made(
    graph: FakeGraph,
) -> None:
    action = ActionFactory(
        call=None, kind="create_online_meeting", parameters={"subject": "Standup"}
    )
    made = online_meeting_resource()
    # The earlier attempt had Graph's answer and stored it, then died.
    store_online_meeting(
        made,
        starts_at=action.created_at,
        ends_at=action.created_at + timedelta(hours=1),
    )
    an_earlier_attempt_died(action)
    graph.on("create_or_get_online_meeting", made)

    perform.perform(action.pk)

    assert graph.methods() == ["create_or_get_online_meeting"]
    args = graph.requests[0].args
    # Both attempts ask under the same key, with the same times.
    assert args["external_id"] == str(action.client_request_id)
    assert args["start"] == action.created_at
    meeting = Meeting.objects.get()
    assert reload(action).result_message == f"Created meeting {meeting.pk}."
