"""Ingest: realistic notification batches applied to calls and participants."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from callbot.calls.ingest import IngestResult, apply_notifications
from callbot.calls.models import Action, Call, CallEvent, Meeting, Participant
from callbot.calls.states import ActionStatus, CallKind, CallState
from callbot.graph.notifications import parse_notification_batch
from tests.conftest import load_fixture
from tests.factories import ActionFactory

pytestmark = pytest.mark.django_db

P2P = "611f0b00-3a1c-4d2e-9b8f-7a6c5d4e3f21"
MEETING = "2c1f0c00-9e8d-4c7b-a6f5-e4d3c2b1a098"
LEE = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"
ANA = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"


def ingest(
    batch: str | dict[str, Any], *, message_id: str = "", capture: Any = None
) -> IngestResult:
    body = load_fixture(batch) if isinstance(batch, str) else batch
    return apply_notifications(
        parse_notification_batch(json.dumps(body)), message_id=message_id
    )


def present(call_id: str) -> dict[str, Participant]:
    return {
        p.graph_id: p
        for p in Participant.objects.filter(
            call__graph_id=call_id, left_at__isnull=True
        )
    }


def test_incoming_peer_to_peer_call_is_stored_with_its_caller(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        result = ingest("incoming_p2p_call.json", message_id="m1")

    call = Call.objects.get(graph_id=P2P)
    assert (call.state, call.direction, call.kind) == (
        "incoming",
        "incoming",
        "peer_to_peer",
    )
    assert call.source_display == "Ana Lopez"
    assert call.tenant_id == "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
    assert call.my_participant_id == "1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b"
    assert call.version == 1
    event = CallEvent.objects.get()
    assert (event.call, event.sequence, event.change_type, event.applied) == (
        call,
        1,
        "created",
        True,
    )
    assert result.stored == 1
    assert result.duplicates == 0
    assert len(callbacks) == 2  # the live delta, and the activity announcement
    [delta] = result.deltas
    assert delta.base_version == 0
    assert delta.version == 1
    assert delta.call["state"] == "incoming"


def test_establishing_then_established_moves_the_call_forward() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_establishing.json")
    ingest("call_established.json")

    call = Call.objects.get(graph_id=P2P)
    assert call.state == CallState.ESTABLISHED
    assert call.media_state_audio == "active"
    assert call.established_at is not None
    assert list(call.events.values_list("sequence", flat=True)) == [1, 2, 3]
    assert call.version == 3


def test_establishing_arriving_after_established_does_not_roll_back() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_established.json")
    result = ingest("call_establishing.json")

    call = Call.objects.get(graph_id=P2P)
    assert call.state == CallState.ESTABLISHED
    assert result.deltas == []
    stale = call.events.get(sequence=3)
    assert stale.applied is False  # stored, not applied


def test_redelivered_notification_changes_nothing() -> None:
    ingest("incoming_p2p_call.json", message_id="m1")
    ingest("call_established.json", message_id="m2")
    version = Call.objects.get(graph_id=P2P).version

    again = ingest("call_established.json", message_id="m2")

    assert again.stored == 0
    assert again.duplicates == 1
    assert again.deltas == []
    assert CallEvent.objects.count() == 2
    assert Call.objects.get(graph_id=P2P).version == version


def test_identical_content_in_a_new_delivery_is_stored_again() -> None:
    ingest("meeting_join_established.json", message_id="a")
    ingest("roster_two_join.json", message_id="b")
    ingest("roster_lee_muted.json", message_id="c")
    # Lee unmutes: the roster is byte-for-byte the one of delivery "b".
    ingest("roster_two_join.json", message_id="d")

    assert present(MEETING)[LEE].is_muted is False
    assert CallEvent.objects.filter(call__graph_id=MEETING).count() == 4


def test_without_a_message_id_the_content_digest_identifies_the_delivery() -> None:
    ingest("incoming_p2p_call.json")
    again = ingest("incoming_p2p_call.json")
    assert again.duplicates == 1
    assert CallEvent.objects.count() == 1


def test_tone_is_recorded_once_per_sequence_id() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_established.json")
    first = ingest("tone_received.json", message_id="t1")
    repeat = ingest("tone_received.json", message_id="t2")  # same sequenceId, new POST
    echoed = load_fixture("tone_received.json")
    echoed["value"][0]["resourceData"]["toneInfo"]["@odata.etag"] = 'W/"2"'
    repeat_with_new_content = ingest(echoed, message_id="t3")

    call = Call.objects.get(graph_id=P2P)
    assert (call.last_tone, call.last_tone_sequence) == ("tone0", 3)
    assert first.deltas[0].call == {"last_tone_sequence": 3, "last_tone": "tone0"}
    assert repeat.duplicates == 1
    assert repeat_with_new_content.stored == 1
    assert repeat_with_new_content.deltas == []


def test_termination_records_result_info_given_as_strings() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_established.json")
    ingest("call_hung_up.json")

    call = Call.objects.get(graph_id=P2P)
    assert call.state == CallState.TERMINATED
    assert (call.result_code, call.result_subcode) == (200, 5001)
    assert call.result_message == "The conversation has ended."
    assert call.terminated_at is not None


def test_rejected_call_deleted_without_state_is_terminated() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_rejected.json")
    assert Call.objects.get(graph_id=P2P).state == CallState.TERMINATED


def test_nothing_moves_a_terminated_call() -> None:
    ingest("incoming_p2p_call.json")
    ingest("call_terminated.json")
    ingest("call_established.json")
    assert Call.objects.get(graph_id=P2P).state == CallState.TERMINATED


def test_notification_for_an_unknown_call_creates_it() -> None:
    # An outgoing call's first notification can beat the task storing the 201.
    ingest("meeting_join_establishing.json")

    call = Call.objects.get(graph_id=MEETING)
    assert call.state == CallState.ESTABLISHING
    assert call.direction == "outgoing"
    assert call.kind == CallKind.MEETING
    meeting = Meeting.objects.get()
    assert call.meeting == meeting
    assert meeting.thread_id.startswith("19:meeting_")
    assert meeting.organizer_id == "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918"
    assert meeting.tenant_id == "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"


def test_meeting_roster_joins_mutes_shares_and_leaves() -> None:
    ingest("meeting_join_established.json")
    joined = ingest("roster_two_join.json")

    roster = present(MEETING)
    assert len(roster) == 3
    assert sum(p.is_bot for p in roster.values()) == 1
    assert {p["name"] for p in joined.deltas[0].participants} == {
        "Ana Lopez",
        "Lee Chen",
        "Helpdesk Bot",
    }

    muted = ingest("roster_lee_muted.json")
    assert present(MEETING)[LEE].is_muted is True
    # Only the changed participant travels, not the whole roster.
    assert [p["id"] for p in muted.deltas[0].participants] == [LEE]

    changed = ingest("roster_ana_shares_lee_left.json")
    roster = present(MEETING)
    assert LEE not in roster
    assert roster[ANA].is_sharing_screen is True
    lee = Participant.objects.get(graph_id=LEE)
    assert lee.left_at is not None
    assert lee.removed_reason == "left"
    assert changed.deltas[0].left == [LEE]
    assert [p["id"] for p in changed.deltas[0].participants] == [ANA]


def test_full_roster_repeated_unchanged_publishes_nothing() -> None:
    ingest("meeting_join_established.json")
    ingest("roster_two_join.json", message_id="1")
    again = ingest("roster_two_join.json", message_id="2")
    assert again.stored == 1
    assert again.deltas == []


def content_sharing_started() -> dict[str, Any]:
    return {
        "value": [
            {
                "changeType": "created",
                "resourceUrl": f"/communications/calls/{MEETING}/contentsharingsessions",
                "resourceData": [
                    {
                        "@odata.type": "#microsoft.graph.contentSharingSession",
                        "id": "session-1",
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize(
    "batch",
    [
        "call_established.json",
        "tone_received.json",
        "operation_completed.json",
        "call_hung_up.json",
        "delta_roster_phone_joins.json",
        "content sharing",
    ],
)
def test_notification_redelivered_under_a_new_message_id_is_stored_once(
    batch: str,
) -> None:
    ingest("incoming_p2p_call.json", message_id="a")
    ingest("meeting_join_established.json", message_id="b")
    body = (
        content_sharing_started() if batch == "content sharing" else load_fixture(batch)
    )
    first = ingest(body, message_id="m1")
    events = CallEvent.objects.count()

    again = ingest(body, message_id="m2")

    size = len(body["value"])
    assert (first.stored, again.stored, again.duplicates) == (size, 0, size)
    assert again.deltas == []
    assert CallEvent.objects.count() == events


def test_redelivered_notification_in_a_new_batch_with_new_ones() -> None:
    ingest("incoming_p2p_call.json", message_id="a")
    ingest("call_established.json", message_id="b")
    tone = load_fixture("tone_received.json")
    ingest(tone, message_id="t1")
    later = copy.deepcopy(tone["value"][0])
    later["resourceData"]["toneInfo"].update(sequenceId=4, tone="tonePound")

    result = ingest({"value": [tone["value"][0], later]}, message_id="t2")

    assert (result.stored, result.duplicates) == (1, 1)
    call = Call.objects.get(graph_id=P2P)
    assert (call.last_tone, call.last_tone_sequence) == ("tonePound", 4)


def test_roster_arriving_after_the_call_ended_brings_nobody_back() -> None:
    # A full roster is identified by its delivery (an identical one may be a
    # repeat), so one redelivered late under a new message id is stored; the
    # ended call ignores it.
    ingest("meeting_join_established.json", message_id="a")
    ingest("roster_two_join.json", message_id="b")
    ended = load_fixture("call_terminated.json")
    ended["value"][0]["resourceUrl"] = f"/communications/calls/{MEETING}"
    ingest(ended, message_id="c")

    late = ingest("roster_two_join.json", message_id="d")

    assert late.stored == 1
    assert late.deltas == []
    assert present(MEETING) == {}
    assert CallEvent.objects.get(message_id="d").applied is False


def test_delta_roster_applies_joins_and_removals_in_sequence() -> None:
    ingest("meeting_join_established.json")
    ingest("roster_two_join.json")
    ingest("delta_roster_phone_joins.json")
    left = ingest("delta_roster_lee_leaves.json")

    roster = present(MEETING)
    assert LEE not in roster
    phone = next(p for p in roster.values() if p.identity_kind == "phone")
    assert phone.identity_id == "+14255550123"
    assert ANA in roster  # a delta does not remove who it does not mention
    call = Call.objects.get(graph_id=MEETING)
    assert call.delta_roster is True
    assert call.roster_sequence == 6
    assert left.deltas[0].left == [LEE]


def test_older_delta_roster_entry_is_ignored() -> None:
    ingest("meeting_join_established.json")
    ingest("delta_roster_lee_leaves.json")  # sequence 6: Lee left
    stale = load_fixture("delta_roster_lee_leaves.json")
    entry = stale["value"][0]["resourceData"]
    entry["sequenceNumber"] = 4
    entry["participants"][0]["rosterSequenceNumber"] = 4
    del entry["participants"][0]["removedState"]

    result = ingest(stale)

    assert Participant.objects.get(graph_id=LEE).left_at is not None
    assert result.deltas == []


def test_operation_completed_moves_its_action_to_completed() -> None:
    ingest("incoming_p2p_call.json")
    call = Call.objects.get(graph_id=P2P)
    action = ActionFactory(
        call=call,
        status=ActionStatus.SENT,
        operation_id="5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
    )

    result = ingest("operation_completed.json")

    action.refresh_from_db()
    assert action.status == ActionStatus.COMPLETED
    assert (action.result_code, action.result_subcode) == (200, 0)
    assert action.completed_at is not None
    assert result.deltas[0].actions[0]["status"] == "completed"


def test_an_operation_finished_without_a_result_says_its_status() -> None:
    ingest("incoming_p2p_call.json")
    call = Call.objects.get(graph_id=P2P)
    action = ActionFactory(
        call=call,
        status=ActionStatus.SENT,
        operation_id="5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
    )
    batch = copy.deepcopy(load_fixture("operation_completed.json"))
    for notification in batch["value"]:
        notification["resourceData"].pop("resultInfo", None)

    ingest(batch)

    action.refresh_from_db()
    assert (action.status, action.result_code) == (ActionStatus.COMPLETED, None)
    assert action.result_message == "Operation completed."


def test_operation_failed_is_matched_despite_uppercase_undashed_ids() -> None:
    ingest("incoming_p2p_call.json")
    call = Call.objects.get(graph_id=P2P)
    action = ActionFactory(
        call=call,
        kind=Action.Kind.RECORD_RESPONSE,
        status=ActionStatus.SENT,
        operation_id="7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
    )

    ingest("operation_failed_uppercase.json")

    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    assert (action.result_code, action.result_subcode) == (400, 8508)
    assert "cancelled" in action.result_message


def test_late_operation_notification_does_not_reopen_a_final_action() -> None:
    ingest("incoming_p2p_call.json")
    action = ActionFactory(
        call=Call.objects.get(graph_id=P2P),
        status=ActionStatus.FAILED,
        operation_id="5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a",
        result_message="timed out",
    )
    ingest("operation_completed.json")
    action.refresh_from_db()
    assert action.status == ActionStatus.FAILED
    assert action.result_message == "timed out"


def test_operation_for_an_unknown_action_is_stored_not_applied() -> None:
    ingest("incoming_p2p_call.json")
    result = ingest("operation_completed.json")
    assert result.stored == 1
    assert (
        CallEvent.objects.filter(resource_kind="operation", applied=False).count() == 1
    )


def test_batch_is_applied_in_array_order() -> None:
    body = load_fixture("incoming_p2p_call.json")
    for name in (
        "call_establishing.json",
        "call_established.json",
        "call_hung_up.json",
    ):
        body["value"].extend(load_fixture(name)["value"])

    result = ingest(body, message_id="batch")

    call = Call.objects.get(graph_id=P2P)
    assert call.state == CallState.TERMINATED
    assert list(call.events.values_list("change_type", flat=True)) == [
        "created",
        "updated",
        "updated",
        "updated",
        "deleted",
    ]
    # One delta per call per batch, carrying the end result.
    [delta] = result.deltas
    assert delta.version == 1
    assert delta.call["state"] == "terminated"


def test_call_end_marks_everyone_left() -> None:
    ingest("meeting_join_established.json")
    ingest("roster_two_join.json")
    ended = copy.deepcopy(load_fixture("call_terminated.json"))
    ended["value"][0]["resourceUrl"] = f"/communications/calls/{MEETING}"
    ended["value"][0]["resourceData"]["id"] = MEETING

    ingest(ended)

    assert present(MEETING) == {}
    assert set(
        Participant.objects.filter(call__graph_id=MEETING).values_list(
            "removed_reason", flat=True
        )
    ) == {"call_ended"}


def test_peer_to_peer_call_given_a_chat_thread_becomes_a_group_call_not_a_meeting() -> (
    None
):
    ingest("incoming_p2p_call.json")
    escalated = load_fixture("call_established.json")
    escalated["value"][0]["resourceData"]["chatInfo"] = {
        "@odata.type": "#microsoft.graph.chatInfo",
        "threadId": "19:adhoc-escalation@thread.v2",
        "messageId": "0",
    }

    ingest(escalated)

    call = Call.objects.get(graph_id=P2P)
    assert call.kind == CallKind.GROUP
    assert call.meeting is None
