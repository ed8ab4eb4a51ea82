"""One performer per action kind: the Graph request each kind sends, with the
action's own client-request-id, and how Graph's answer is recorded."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from callbot.calls import kinds, perform
from callbot.calls.models import Action, AuditEntry, Call, Meeting
from callbot.graph.client import GraphClient
from tests.factories import (
    ActionFactory,
    CallFactory,
    MeetingFactory,
    ParticipantFactory,
)
from tests.support.fake_graph import FakeGraph, operation

pytestmark = pytest.mark.django_db

K = Action.Kind
USER = "5b8e9c1a-2f3d-4e5a-9b6c-7d8e9f0a1b2c"
PROMPT = "https://bot.example.net/prompts/welcome.wav"

# kind -> (the client method it sends, raw parameters as a person would give them)
REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    K.ANSWER: ("answer", {"prompt_uris": [PROMPT]}),
    K.REJECT: ("reject", {"reason": "busy"}),
    K.REDIRECT: ("redirect", {"target": {"phone": "+14255550100"}}),
    K.TRANSFER: ("transfer", {"target": {"user_id": USER}}),
    K.PLACE_CALL: ("place_peer_to_peer_call", {"target": {"user_id": USER}}),
    K.PLACE_GROUP_CALL: (
        "place_group_call",
        {"targets": [{"user_id": USER}, {"phone": "+14255550100"}], "subject": "Ops"},
    ),
    K.JOIN_MEETING: ("join_meeting", {}),  # the meeting is made per test
    K.CREATE_ONLINE_MEETING: (
        "create_or_get_online_meeting",
        {"subject": "Standup"},
    ),
    K.INVITE: ("invite_participants", {"target": {"user_id": USER}}),
    K.MUTE_BOT: ("mute", {}),
    K.UNMUTE_BOT: ("unmute", {}),
    K.MUTE_PARTICIPANT: ("mute_participant", {}),
    K.REMOVE_PARTICIPANT: ("remove_participant", {}),
    K.START_HOLD_MUSIC: ("start_hold_music", {}),
    K.STOP_HOLD_MUSIC: ("stop_hold_music", {}),
    K.HANG_UP: ("delete_call", {}),
    K.PLAY_PROMPT: ("play_prompt", {"uri": PROMPT}),
    K.RECORD_RESPONSE: ("record_response", {"prompt_uri": PROMPT}),
    K.CANCEL_MEDIA_PROCESSING: ("cancel_media_processing", {}),
    K.SUBSCRIBE_TO_TONE: ("subscribe_to_tone", {}),
    K.SEND_DTMF_TONES: ("send_dtmf_tones", {"tones": "12#"}),
    K.CHANGE_SCREEN_SHARING_ROLE: ("change_screen_sharing_role", {"role": "sharer"}),
    K.UPDATE_RECORDING_STATUS: ("update_recording_status", {"status": "recording"}),
    K.KEEP_ALIVE: ("keep_alive", {}),
}
OPERATION_KINDS = sorted(
    kind
    for kind, (method, _) in REQUESTS.items()
    if inspect.signature(getattr(GraphClient, method)).return_annotation
    == "OperationResource"
)


def queued(kind: str, raw: dict[str, Any] | None = None) -> Action:
    """An action of ``kind`` as the service stores it: on a call in a state the kind
    acts in, with parameters cleaned by the kind's own cleaner."""
    row = kinds.KINDS[kind]
    call: Call | None = None
    participant = None
    if row.states is not None:
        state = "established" if "established" in row.states else "incoming"
        # A transfer out of a group call names its transferee; the table's
        # transfer is the peer-to-peer one.
        call = CallFactory(
            kind="peer_to_peer" if kind == K.TRANSFER else "group", state=state
        )
        ParticipantFactory(call=call, is_bot=True, graph_id=call.my_participant_id)
    if kind == K.JOIN_MEETING:
        raw = {"meeting_id": MeetingFactory().pk, **(raw or {})}
    if row.participant:
        assert call is not None
        participant = ParticipantFactory(call=call)
        params: dict[str, Any] = {"participant_id": participant.graph_id}
    else:
        params, _ = row.clean(raw if raw is not None else REQUESTS[kind][1], call)
    action: Action = ActionFactory(
        call=call, kind=kind, participant=participant, parameters=params
    )
    action.client_context = str(action.client_request_id)
    action.save()
    return action


def test_the_table_names_a_request_for_every_action_kind() -> None:
    assert set(REQUESTS) == kinds.ACTION_KINDS
    assert len(OPERATION_KINDS) == 12


@pytest.mark.parametrize("kind", sorted(kinds.ACTION_KINDS))
def test_every_kind_sends_its_request_once_with_its_own_client_request_id(
    graph: FakeGraph, kind: str
) -> None:
    action = queued(kind)

    assert perform.perform(action.pk) is None

    assert graph.methods() == [REQUESTS[kind][0]]
    request = graph.requests[0]
    assert request.client_request_id == str(action.client_request_id)
    if action.call is not None:
        assert request.args["call_id"] == action.call.graph_id
        assert request.tenant == action.call.tenant_id
    if "participant_id" in action.parameters:
        assert request.args["participant_id"] == action.parameters["participant_id"]
    if "client_context" in request.args:
        assert request.args["client_context"] == action.client_context
    assert Action.objects.get(pk=action.pk).status in ("sent", "completed")


@pytest.mark.parametrize("kind", OPERATION_KINDS)
def test_an_operation_answered_running_is_sent_with_its_operation_id(
    graph: FakeGraph, kind: str
) -> None:
    action = queued(kind)
    graph.on(REQUESTS[kind][0], operation("running", "Op-Id-42"))

    perform.perform(action.pk)

    sent = Action.objects.get(pk=action.pk)
    assert (sent.status, sent.operation_id, sent.operation_key) == (
        "sent",
        "Op-Id-42",
        "opid42",
    )
    assert sent.sent_at is not None
    assert sent.completed_at is None


@pytest.mark.parametrize("kind", OPERATION_KINDS)
def test_an_operation_answered_completed_or_failed_is_final_at_once(
    graph: FakeGraph, kind: str
) -> None:
    done, refused = queued(kind), queued(kind)
    method = REQUESTS[kind][0]
    graph.on(method, operation("completed", "op-1", code=200, message="Success."))
    perform.perform(done.pk)
    graph.on(method, operation("failed", "op-2", code=400, subcode=8508, message="No."))
    perform.perform(refused.pk)

    done.refresh_from_db()
    refused.refresh_from_db()
    assert (done.status, done.result_code, done.operation_id) == (
        "completed",
        200,
        "op-1",
    )
    assert done.completed_at is not None
    assert (refused.status, refused.result_code, refused.result_subcode) == (
        "failed",
        400,
        8508,
    )
    assert refused.result_message == "No."


@pytest.mark.parametrize("kind", [K.MUTE_PARTICIPANT, K.UPDATE_RECORDING_STATUS])
def test_an_operation_answered_final_without_a_result_says_its_status(
    graph: FakeGraph, kind: str
) -> None:
    """Graph may answer an operation ``completed`` with ``resultInfo: null``:
    the outcome (and its audit entry) still says how it went."""
    done, refused = queued(kind), queued(kind)
    method = REQUESTS[kind][0]
    graph.on(method, operation("completed", "op-1"))
    perform.perform(done.pk)
    graph.on(method, operation("failed", "op-2"))
    perform.perform(refused.pk)

    done.refresh_from_db()
    refused.refresh_from_db()
    assert (done.status, done.result_message) == ("completed", "Operation completed.")
    assert (refused.status, refused.result_message) == ("failed", "Operation failed.")
    outcome = AuditEntry.objects.get(action_ref=done.pk, outcome="completed")
    assert outcome.detail["result_message"] == "Operation completed."


@pytest.mark.parametrize(
    ("kind", "result_code"),
    [
        (K.REMOVE_PARTICIPANT, 202),
        (K.CHANGE_SCREEN_SHARING_ROLE, 202),
        (K.KEEP_ALIVE, 200),
    ],
)
def test_requests_graph_only_accepts_complete_at_once(
    graph: FakeGraph, kind: str, result_code: int
) -> None:
    action = queued(kind)

    perform.perform(action.pk)

    action.refresh_from_db()
    assert (action.status, action.result_code) == ("completed", result_code)


@pytest.mark.parametrize(
    "kind", [K.ANSWER, K.REJECT, K.REDIRECT, K.TRANSFER, K.HANG_UP]
)
def test_requests_the_call_state_settles_stay_sent(graph: FakeGraph, kind: str) -> None:
    action = queued(kind)

    perform.perform(action.pk)

    action.refresh_from_db()
    assert (action.status, action.completed_at) == ("sent", None)


@pytest.mark.parametrize(
    ("kind", "call_kind"),
    [
        (K.PLACE_CALL, "peer_to_peer"),
        (K.PLACE_GROUP_CALL, "group"),
        (K.JOIN_MEETING, "meeting"),
    ],
)
def test_a_call_graph_creates_is_stored_and_linked_to_its_action(
    graph: FakeGraph, kind: str, call_kind: str
) -> None:
    action = queued(kind)

    perform.perform(action.pk)

    action.refresh_from_db()
    call = Call.objects.get()
    assert (action.status, action.call) == ("sent", call)
    assert (call.kind, call.direction, call.state) == (
        call_kind,
        "outgoing",
        "establishing",
    )
    if kind == K.JOIN_MEETING:
        assert call.meeting_id == action.parameters["meeting_id"]


def test_a_meeting_known_only_by_its_join_id_is_joined_by_id(graph: FakeGraph) -> None:
    meeting = MeetingFactory(
        thread_id="", organizer_id="", join_meeting_id="4315550987", passcode="kT9"
    )
    action = queued(K.JOIN_MEETING, {"meeting_id": meeting.pk})

    perform.perform(action.pk)

    assert graph.methods() == ["join_meeting_by_id"]
    args = graph.requests[0].args
    assert (args["join_meeting_id"], args["passcode"]) == ("4315550987", "kT9")


def test_a_created_online_meeting_is_stored_once(graph: FakeGraph) -> None:
    action = queued(K.CREATE_ONLINE_MEETING)

    perform.perform(action.pk)

    action.refresh_from_db()
    meeting = Meeting.objects.get()
    assert (action.status, action.result_code) == ("completed", 201)
    assert action.result_message == f"Created meeting {meeting.pk}."
    assert meeting.join_meeting_id == "4315550987"
    assert meeting.thread_id.startswith("19:meeting_")


@pytest.mark.parametrize(
    "kind", [K.ANSWER, K.JOIN_MEETING, K.PLACE_GROUP_CALL], ids=str
)
def test_delta_rosters_are_asked_for_where_graph_offers_them(
    graph: FakeGraph, settings: Any, kind: str
) -> None:
    parameters = dict(REQUESTS[kind][1])
    if kind == K.JOIN_MEETING:
        parameters["meeting_id"] = MeetingFactory().pk
    perform.perform(queued(kind, parameters).pk)
    settings.GRAPH_DELTA_ROSTER = False
    if kind == K.JOIN_MEETING:
        parameters["meeting_id"] = MeetingFactory().pk
    perform.perform(queued(kind, parameters).pk)

    options = [r.args["call_options"] for r in graph.requests]
    assert options[0] is not None
    assert options[0].is_delta_roster_enabled is True
    assert options[-1] is None


def test_a_peer_to_peer_call_is_answered_with_full_rosters(graph: FakeGraph) -> None:
    # Its full roster is how a third person's arrival escalates it to a group call.
    action = queued(K.ANSWER)
    Call.objects.filter(pk=action.call_id).update(kind="peer_to_peer")

    perform.perform(action.pk)

    assert graph.requests[0].args["call_options"] is None
