"""Callbot's ``GraphClient`` against the emulator, one test per group of methods.

Real sockets both ways: the client (with msal for its token) talks HTTPS to the
emulator, and the notifications each action causes go to Callbot's webhook on the
live server, so every typed result is checked against what reached the database
too. The emulator was written from the contract alone; a disagreement between it
and the client shows up here.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from callbot.calls.models import Call, CallEvent, Meeting, Participant
from callbot.graph import bodies
from callbot.graph.bodies import CallOptions, OrganizerMeetingInfo
from callbot.graph.client import GraphClient
from callbot.graph.errors import (
    GraphConflictError,
    GraphForbiddenError,
    GraphNotFoundError,
)
from callbot.graph.factory import get_graph_client, reset_graph_client
from callbot.graph.resources import (
    CallResource,
    OnlineMeetingResource,
    OperationResource,
    ParticipantResource,
)
from tests.e2e.conftest import Callbot
from tests.e2e.playing import (
    ANA,
    LEE,
    PROMPT,
    RAVI,
    TENANT,
    join_meeting,
    operation_outcome,
    present,
    ring,
    ring_and_answer,
    stored_call,
)
from tests.support.emulator import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(quiet_bot: Callbot) -> Iterator[GraphClient]:
    """The process-wide client, built from the settings the fixture pointed at the
    emulator."""
    yield get_graph_client()
    reset_graph_client()


def call_states(call: Call) -> list[str]:
    """The call states the stored notifications of ``call`` carried, in order."""
    return [
        str((e.payload.get("resourceData") or {}).get("state") or e.change_type)
        for e in CallEvent.objects.filter(call=call, resource_kind="call").order_by(
            "sequence"
        )
    ]


def test_a_placed_call_is_returned_establishing_then_read_kept_alive_and_hung_up(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    placed = client.place_peer_to_peer_call(ANA, callback_uri=quiet_bot.webhook)

    assert isinstance(placed, CallResource)
    assert placed.id
    assert (placed.state, placed.direction) == ("establishing", "outgoing")
    assert placed.my_participant_id
    assert placed.media_config_kind == "service_hosted"
    # State updates carry the state alone (contract §7.4); direction, targets and
    # the rest are what the create answer told whoever placed the call.
    stored_call(placed.id, state="established")

    read = client.get_call(placed.id)
    client.keep_alive(placed.id)
    client.delete_call(placed.id)

    assert (read.id, read.state, read.media_state_audio) == (
        placed.id,
        "established",
        "active",
    )
    ended = stored_call(placed.id, state="terminated")
    assert (ended.result_code, ended.result_subcode) == (200, 5001)
    assert call_states(ended)[-2:] == ["terminating", "terminated"]
    with pytest.raises(GraphNotFoundError):
        client.get_call(placed.id)


def test_a_group_calls_roster_is_read_changed_and_mirrored_in_the_database(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    # App-hosted media: the screen-sharing role needs it (contract §6.14).
    placed = client.place_group_call(
        [ANA, LEE],
        "Sev2 triage",
        callback_uri=quiet_bot.webhook,
        media_config=bodies.app_hosted_media_config("media-sdk-blob"),
    )
    assert placed.id
    call = stored_call(placed.id, state="established")
    wait_until(lambda: present(call) == 3)

    roster = client.list_participants(placed.id)
    by_name = {p.identity.display_name: p for p in roster}
    ana, lee = by_name["Ana Lopez"], by_name["Lee Chen"]
    assert all(isinstance(p, ParticipantResource) for p in roster)
    assert sorted(by_name) == ["Ana Lopez", "Callbot", "Lee Chen"]
    assert ana.id
    assert lee.id
    assert client.get_participant(placed.id, ana.id).identity == ANA

    invited = client.invite_participants(placed.id, [RAVI], client_context="ravi")
    muted = client.mute_participant(placed.id, ana.id)
    client.remove_participant(placed.id, lee.id)
    bot_muted = client.mute(placed.id)
    bot_unmuted = client.unmute(placed.id)
    held = client.start_hold_music(placed.id, ana.id, client_context="hold")
    resumed = client.stop_hold_music(placed.id, ana.id)
    client.change_screen_sharing_role(placed.id, "sharer")

    assert (invited.kind, invited.status, invited.client_context) == (
        "inviteParticipantsOperation",
        "running",
        "ravi",
    )
    assert (muted.kind, muted.status) == ("muteParticipantOperation", "completed")
    assert (bot_muted.status, bot_unmuted.status) == ("completed", "completed")
    assert (held.kind, held.status) == ("startHoldMusicOperation", "running")
    assert resumed.kind == "stopHoldMusicOperation"
    assert all(
        isinstance(op, OperationResource) and op.id
        for op in (invited, muted, bot_muted, bot_unmuted, held, resumed)
    )
    wait_until(
        lambda: (
            present(call, display_name="Ravi Iyer") == 1
            and present(call, display_name="Lee Chen") == 0
            and present(call, display_name="Ana Lopez", is_muted=True) == 1
            and present(call, is_bot=True, is_sharing_screen=True) == 1
        )
    )
    assert Participant.objects.get(call=call, graph_id=lee.id).removed_reason
    assert operation_outcome(call, str(invited.id))["status"] == "completed"


def test_a_meeting_is_joined_by_its_coordinates_and_by_its_join_meeting_id(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    meeting, by_coordinates = join_meeting(quiet_bot, client)

    by_id = client.join_meeting_by_id(
        meeting["joinMeetingId"],
        meeting["passcode"],
        TENANT,
        callback_uri=quiet_bot.webhook,
    )

    assert isinstance(by_id, CallResource)
    assert by_id.id
    assert by_id.chat_info is not None
    assert by_id.chat_info["threadId"] == meeting["chatInfo"]["threadId"]
    second = stored_call(by_id.id, state="established")
    assert by_coordinates.kind == second.kind == "meeting"
    # Both legs name the same meeting, so they share one Meeting row.
    assert by_coordinates.meeting_id == second.meeting_id
    stored = Meeting.objects.get(pk=second.meeting_id)
    assert stored.thread_id == meeting["chatInfo"]["threadId"]
    assert stored.organizer_id == meeting["organizer"]["user"]["id"]


def test_service_hosted_media_prompts_tones_recordings_and_dtmf(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    call = ring_and_answer(quiet_bot, client)
    graph_id = call.graph_id

    prompt = client.play_prompt(graph_id, [PROMPT], client_context="menu")
    listening = client.subscribe_to_tone(graph_id)
    quiet_bot.emulator.control("POST", f"/calls/{graph_id}/tones", {"keys": "0#"})

    assert (prompt.kind, prompt.status, prompt.client_context) == (
        "playPromptOperation",
        "running",
        "menu",
    )
    assert listening.status == "completed"
    assert operation_outcome(call, str(prompt.id))["status"] == "completed"
    stored_call(graph_id, last_tone="pound", last_tone_sequence=2)

    recording = client.record_response(graph_id, prompt=PROMPT, stop_tones=["#"])
    assert (recording.kind, recording.status) == ("recordOperation", "running")
    done = operation_outcome(call, str(recording.id))
    audio = client.download_recording(
        done["recordingLocation"], done["recordingAccessToken"]
    )
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (1, 16000)

    tones = client.send_dtmf_tones(graph_id, ["tone1", "pound"], 100)
    status = client.update_recording_status(graph_id, "recording")
    assert tones.kind == "sendDtmfTonesOperation"
    assert status.status == "completed"

    quiet_bot.emulator.control("PATCH", "/config", {"mediaSeconds": 30})
    long_prompt = client.play_prompt(graph_id, [PROMPT])
    cancelled = client.cancel_media_processing(graph_id, client_context="stop")
    assert cancelled.kind == "cancelMediaProcessingOperation"
    failed = operation_outcome(call, str(long_prompt.id))
    assert failed["status"] == "failed"
    assert failed["resultInfo"]["subcode"] == 8508


def test_reject_and_redirect_end_incoming_calls(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    rejected, redirected = ring(quiet_bot), ring(quiet_bot, LEE)

    client.reject(rejected.graph_id, "busy")
    client.redirect(redirected.graph_id, [RAVI], timeout=20)

    assert stored_call(rejected.graph_id, state="terminated")
    assert stored_call(redirected.graph_id, state="terminated")


def test_a_transfer_goes_through_transfer_accepted_and_ends_the_bots_leg(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    call = ring_and_answer(quiet_bot, client)

    client.transfer(call.graph_id, LEE, client_context="to-lee")

    ended = stored_call(call.graph_id, state="terminated")
    assert (ended.result_code, ended.result_subcode) == (0, 7015)
    assert call_states(ended)[-3:] == [
        "transferring",
        "transferAccepted",
        "terminated",
    ]


def test_an_invite_replacing_a_peer_to_peer_call_moves_the_caller_into_the_meeting(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    p2p = ring_and_answer(quiet_bot, client, LEE)
    _, meeting_call = join_meeting(quiet_bot, client)

    invited = client.invite_participants(
        meeting_call.graph_id, [LEE], replaces_call_id=p2p.graph_id
    )

    assert invited.kind == "inviteParticipantsOperation"
    ended = stored_call(p2p.graph_id, state="terminated")
    assert (ended.result_code, ended.result_subcode) == (200, 5300)
    wait_until(lambda: present(meeting_call, display_name="Lee Chen") == 1)


def test_an_online_meeting_is_created_with_its_join_coordinates(
    client: GraphClient,
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)

    meeting = client.create_online_meeting(
        RAVI.id,
        "Quarterly review",
        start,
        start + timedelta(minutes=30),
        attendees=[ANA],
        is_passcode_required=True,
    )

    assert isinstance(meeting, OnlineMeetingResource)
    assert meeting.subject == "Quarterly review"
    assert meeting.join_web_url.startswith("https://teams.microsoft.com/l/meetup-join/")
    assert meeting.chat_info is not None
    assert meeting.chat_info["threadId"].startswith("19:meeting_")
    assert meeting.join_meeting_id
    assert meeting.passcode


def test_create_or_get_with_the_same_external_id_returns_the_same_meeting(
    client: GraphClient,
) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    key = "0b7e5f2a-9c1d-4e3f-8a6b-5c4d3e2f1a0b"

    made = client.create_or_get_online_meeting(
        RAVI.id, key, "Quarterly review", start, start + timedelta(minutes=30)
    )
    again = client.create_or_get_online_meeting(
        RAVI.id, key, "Quarterly review", start, start + timedelta(minutes=30)
    )

    assert again.id == made.id
    assert again.join_web_url == made.join_web_url
    assert made.chat_info is not None
    assert made.chat_info["threadId"].startswith("19:meeting_")


def test_a_prepared_body_joins_a_meeting_created_through_graph(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    start = datetime.now(UTC)
    meeting = client.create_online_meeting(
        RAVI.id, "Incident bridge", start, start + timedelta(hours=1)
    )
    assert meeting.chat_info is not None
    body = bodies.meeting_join(
        OrganizerMeetingInfo(RAVI),
        chat_info=meeting.chat_info,
        callback_uri=quiet_bot.webhook,
        tenant_id=TENANT,
        call_options=CallOptions(is_delta_roster_enabled=True),
    )

    joined = client.create_call(body)

    assert joined.id
    assert joined.state == "establishing"
    call = stored_call(joined.id, state="established")
    assert call.kind == "meeting"
    assert call.meeting is not None
    assert call.meeting.thread_id == meeting.chat_info["threadId"]


def test_an_unknown_call_is_a_typed_not_found(client: GraphClient) -> None:
    with pytest.raises(GraphNotFoundError) as caught:
        client.get_call("3e9a1c4f-0000-4000-8000-000000000000")

    assert caught.value.status == 404
    assert caught.value.code
    assert caught.value.request_id
    assert not caught.value.retryable


def test_answering_an_answered_call_is_a_typed_conflict(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    call = ring_and_answer(quiet_bot, client)

    with pytest.raises(GraphConflictError) as caught:
        client.answer(call.graph_id, callback_uri=quiet_bot.webhook)

    assert caught.value.status == 409
    assert not caught.value.retryable
    assert Call.objects.get(pk=call.pk).state == "established"


def test_a_missing_permission_is_a_typed_forbidden(quiet_bot: Callbot) -> None:
    emulator = quiet_bot.emulator
    granted = emulator.control("GET", "/config")["permissions"]
    emulator.control(
        "PATCH",
        "/config",
        {"permissions": [p for p in granted if p != "Calls.Initiate.All"]},
    )
    # Roles travel in the token: a client built now gets a token without it.
    reset_graph_client()

    with pytest.raises(GraphForbiddenError) as caught:
        get_graph_client().place_peer_to_peer_call(ANA, callback_uri=quiet_bot.webhook)

    assert caught.value.status == 403
    assert "Calls.Initiate.All" in caught.value.message
    assert not Call.objects.exists()
