"""The beat and worker tasks, run eagerly (as on the embedded default) against a
scripted Graph: keepAlive, reconciliation, the stale-action sweep, scheduled joins
and recordings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

import pytest
from celery.exceptions import Retry

from callbot.calls import tasks
from callbot.calls.models import Action, Call, Participant, Recording
from callbot.graph.errors import GraphNotFoundError, GraphTransientError
from tests.factories import (
    ActionFactory,
    CallFactory,
    MeetingFactory,
    ParticipantFactory,
)
from tests.support.fake_graph import FakeGraph, call_resource

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

PROMPT = "https://bot.example.net/prompts/welcome.wav"
RECORDING = "https://media.example.net/recordings/7f3a"


def ago(**delta: float) -> Any:
    return timezone.now() - timedelta(**delta)


def prompt(**fields: Any) -> Action:
    action: Action = ActionFactory(
        kind="play_prompt", parameters={"uri": PROMPT}, **fields
    )
    return action


# --- keepAlive ------------------------------------------------------------------------


def test_keep_alives_go_only_to_connected_calls_not_kept_alive_recently(
    graph: FakeGraph,
) -> None:
    never = CallFactory(state="established")
    long_ago = CallFactory(state="hold", last_keep_alive_at=ago(hours=1))
    recent = CallFactory(state="established", last_keep_alive_at=ago(minutes=1))
    CallFactory(state="ringing")
    CallFactory(state="terminated", terminated_at=ago(hours=1))

    assert tasks.send_keep_alives.delay().get() == 2

    assert sorted(r.args["call_id"] for r in graph.sent("keep_alive")) == sorted(
        [never.graph_id, long_ago.graph_id]
    )
    assert {r.tenant for r in graph.requests} == {never.tenant_id}
    kept = Call.objects.filter(last_keep_alive_at__gte=ago(seconds=5))
    assert set(kept) == {never, long_ago}
    assert (
        Call.objects.get(pk=recent.pk).last_keep_alive_at == recent.last_keep_alive_at
    )
    assert tasks.send_keep_alives.delay().get() == 0
    assert len(graph.requests) == 2


def test_a_keep_alive_graph_answers_404_closes_the_call_here(
    graph: FakeGraph,
) -> None:
    call = CallFactory(kind="group")
    bot = ParticipantFactory(call=call, is_bot=True, graph_id=call.my_participant_id)
    lee = ParticipantFactory(call=call)
    playing = prompt(call=call, status="sent", sent_at=ago(seconds=3))
    waiting = ActionFactory(call=call, kind="mute_bot")
    hanging_up = ActionFactory(call=call, kind="hang_up", status="sent")
    done = prompt(call=call, status="completed", sent_at=ago(minutes=1))
    Action.objects.filter(pk=done.pk).update(completed_at=ago(minutes=1))
    graph.on("keep_alive", GraphNotFoundError(404, "NotFound", "Call not found."))

    assert tasks.send_keep_alive.delay(call.pk).get() == "gone"

    ended = Call.objects.get(pk=call.pk)
    assert (ended.state, ended.result_message) == (
        "terminated",
        "Graph no longer knows this call.",
    )
    assert ended.terminated_at is not None
    assert ended.version == call.version + 1
    assert ended.last_keep_alive_at is None
    for person in (bot, lee):
        assert Participant.objects.get(pk=person.pk).left_at is not None
    for pending in (playing, waiting):
        lost = Action.objects.get(pk=pending.pk)
        assert (lost.status, lost.error_code) == ("failed", "call_lost")
        assert lost.result_message == "Graph no longer knows this call."
    assert Action.objects.get(pk=hanging_up.pk).status == "completed"
    assert Action.objects.get(pk=done.pk).error_code == ""


def test_a_keep_alive_for_a_call_no_longer_connected_is_skipped(
    graph: FakeGraph,
) -> None:
    call = CallFactory(state="terminating")

    assert tasks.send_keep_alive.delay(call.pk).get() == "skipped"
    assert graph.requests == []


def test_a_keep_alive_graph_fails_is_retried_and_the_call_kept(
    graph: FakeGraph,
) -> None:
    call = CallFactory()
    graph.on("keep_alive", GraphTransientError(503, "ServiceUnavailable"))

    with pytest.raises(Retry):
        tasks.send_keep_alive.delay(call.pk)

    assert graph.methods() == ["keep_alive"]
    kept = Call.objects.get(pk=call.pk)
    assert (kept.state, kept.last_keep_alive_at) == ("established", None)


# --- reconciliation -------------------------------------------------------------------


def test_reconciliation_closes_calls_graph_forgot_and_counts_what_it_found(
    graph: FakeGraph,
) -> None:
    gone = CallFactory(last_notification_at=ago(hours=1))
    alive = CallFactory(last_notification_at=ago(hours=1))
    flaky = CallFactory(last_notification_at=ago(hours=1))
    CallFactory(last_notification_at=ago(seconds=10))
    CallFactory(
        state="terminated",
        terminated_at=ago(hours=1),
        last_notification_at=ago(hours=2),
    )

    def get_call(args: dict[str, Any]) -> Any:
        if args["call_id"] == gone.graph_id:
            raise GraphNotFoundError(404, "NotFound")
        if args["call_id"] == flaky.graph_id:
            raise GraphTransientError(503, "ServiceUnavailable")
        return call_resource(args["call_id"], "established")

    graph.on("get_call", get_call)

    assert tasks.reconcile_silent_calls.delay().get() == {
        "gone": 1,
        "alive": 1,
        "error": 1,
    }

    assert sorted(r.args["call_id"] for r in graph.requests) == sorted(
        [gone.graph_id, alive.graph_id, flaky.graph_id]
    )
    assert Call.objects.get(pk=gone.pk).state == "terminated"
    checked = Call.objects.get(pk=alive.pk)
    assert checked.state == "established"
    assert checked.last_notification_at is not None
    assert checked.last_notification_at > ago(seconds=5)
    assert Call.objects.get(pk=flaky.pk).state == "established"
    # Only the call that could not be checked is asked about again.
    graph.requests.clear()
    assert tasks.reconcile_silent_calls.delay().get() == {"error": 1}
    assert [r.args["call_id"] for r in graph.requests] == [flaky.graph_id]


# --- stale actions --------------------------------------------------------------------


def test_the_sweep_resends_only_actions_left_queued_for_too_long(
    graph: FakeGraph,
) -> None:
    stale = prompt()
    fresh = prompt()
    old_sent = prompt(status="sent", sent_at=ago(minutes=5))
    Action.objects.filter(pk__in=[stale.pk, old_sent.pk]).update(
        updated_at=ago(minutes=5)
    )

    assert tasks.requeue_stale_actions.delay().get() == 1

    assert [r.client_request_id for r in graph.requests] == [
        str(stale.client_request_id)
    ]
    assert Action.objects.get(pk=stale.pk).status == "sent"
    assert Action.objects.get(pk=fresh.pk).status == "queued"
    assert Action.objects.get(pk=old_sent.pk).status == "sent"
    assert tasks.requeue_stale_actions.delay().get() == 0


def test_the_sweep_does_not_send_an_action_another_worker_still_holds(
    graph: FakeGraph,
) -> None:
    held = prompt(attempts=1, claimed_until=timezone.now() + timedelta(seconds=30))
    Action.objects.filter(pk=held.pk).update(updated_at=ago(minutes=5))

    tasks.requeue_stale_actions.delay()

    assert graph.requests == []
    assert Action.objects.get(pk=held.pk).attempts == 1


# --- scheduled joins ------------------------------------------------------------------


def test_due_meetings_are_joined_once_and_ended_ones_are_left(
    graph: FakeGraph,
    channel_layer: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    due = MeetingFactory(auto_join=True, starts_at=ago(seconds=10))
    later = MeetingFactory(auto_join=True, starts_at=ago(hours=-1))
    ended = MeetingFactory(
        leave_at_end=True, starts_at=ago(hours=2), ends_at=ago(minutes=1)
    )
    in_ended = CallFactory(kind="meeting", meeting=ended)
    running = MeetingFactory(
        leave_at_end=True, starts_at=ago(hours=1), ends_at=ago(hours=-1)
    )
    CallFactory(kind="meeting", meeting=running)
    stay = MeetingFactory(
        leave_at_end=False, starts_at=ago(hours=2), ends_at=ago(minutes=1)
    )
    CallFactory(kind="meeting", meeting=stay)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.join_due_meetings.delay().get() == 1
        assert tasks.join_due_meetings.delay().get() == 0

    assert sorted(graph.methods()) == ["delete_call", "join_meeting"]
    join = Action.objects.get(kind="join_meeting")
    assert (join.status, join.parameters, join.requested_by) == (
        "sent",
        {"meeting_id": due.pk},
        None,
    )
    assert join.call is not None
    assert join.call.meeting_id == due.pk
    hang_up = Action.objects.get(kind="hang_up")
    assert (hang_up.call_id, hang_up.status) == (in_ended.pk, "sent")
    assert graph.sent("delete_call")[0].args["call_id"] == in_ended.graph_id
    assert later.calls.count() == 0
    later.refresh_from_db()
    assert later.joined_at is None


# --- recordings -----------------------------------------------------------------------


@pytest.fixture
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def test_a_recording_is_kept_once(graph: FakeGraph, media: Path) -> None:
    action = ActionFactory(kind="record_response", status="sent")
    audio = b"RIFF\x24\x00\x00\x00WAVEfmt recorded"
    graph.on("download_recording", audio)

    assert (
        tasks.fetch_recording.delay(action.pk, RECORDING, "rec-token").get() == "kept"
    )
    assert tasks.fetch_recording.delay(action.pk, RECORDING, "rec-token").get() == "had"

    assert graph.methods() == ["download_recording"]
    request = graph.requests[0]
    assert (request.args["location"], request.args["access_token"]) == (
        RECORDING,
        "rec-token",
    )
    assert request.tenant == action.call.tenant_id
    recording = Recording.objects.get()
    assert (recording.action, recording.call, recording.size) == (
        action,
        action.call,
        len(audio),
    )
    with recording.audio.open("rb") as stored:
        assert stored.read() == audio
    assert Path(recording.audio.path).is_relative_to(media)


def test_a_recording_graph_has_discarded_is_given_up(
    graph: FakeGraph, media: Path
) -> None:
    action = ActionFactory(kind="record_response", status="sent")
    graph.on("download_recording", GraphNotFoundError(404, "NotFound"))

    assert (
        tasks.fetch_recording.delay(action.pk, RECORDING, "rec-token").get() == "gone"
    )

    assert not Recording.objects.exists()
    assert graph.methods() == ["download_recording"]


def test_a_recording_of_an_unknown_action_is_skipped(
    graph: FakeGraph, media: Path
) -> None:
    assert (
        tasks.fetch_recording.delay(424242, RECORDING, "rec-token").get() == "skipped"
    )
    assert graph.requests == []
