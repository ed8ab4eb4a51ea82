"""GraphClient against a respx stand-in for Graph: every public method's method,
path, exact JSON body and parsed return; then headers, retries, the retry budget,
error mapping and token refresh."""

from __future__ import annotations

import json
import logging
import pickle
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import jwt
import pytest
import respx

from callbot.graph import factory
from callbot.graph.bodies import (
    CallOptions,
    ChatInfo,
    MediaInfo,
    OrganizerMeetingInfo,
    TokenMeetingInfo,
)
from callbot.graph.client import GraphClient
from callbot.graph.errors import (
    GraphAuthError,
    GraphBadRequestError,
    GraphConflictError,
    GraphError,
    GraphForbiddenError,
    GraphNotFoundError,
    GraphPermanentError,
    GraphThrottledError,
    GraphTransientError,
)
from callbot.graph.resources import (
    CallResource,
    Identity,
    OnlineMeetingResource,
    OperationResource,
    ParticipantResource,
)
from callbot.graph.tokens import StaticTokenProvider
from callbot.graph.transport import KEEPALIVE_SECONDS, GraphTransport
from tests.graph.conftest import (
    ANA,
    BASE_URL,
    BOT,
    CALL_ID,
    CALLBACK,
    LEE,
    OPERATION_ID,
    PARTICIPANT_ID,
    TENANT,
    error_body,
    sent_json,
)

G = "#microsoft.graph."
CALLS = "/communications/calls"
CALL = f"{CALLS}/{CALL_ID}"
PARTICIPANT = f"{CALL}/participants/{PARTICIPANT_ID}"
WELCOME = "https://bot.example.net/audio/welcome.wav"
THREAD = "19:meeting_ZmE3YjQyNDItMzBkYS00NTQ1LWIwYjEtOTk3ZWQ4ZTc1YzA1@thread.v2"
ORGANIZER_ID = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918"


def identity_set(member: str, id_: str, **extra: str) -> dict[str, Any]:
    return {
        "@odata.type": G + "identitySet",
        member: {"@odata.type": G + "identity", "id": id_, **extra},
    }


def invitation(identity: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": G + "invitationParticipantInfo",
        "identity": identity,
        **extra,
    }


ANA_SET = identity_set("user", ANA.id, displayName="Ana Lopez")
LEE_SET = identity_set("user", LEE.id)
BOT_SET = identity_set("application", BOT.id, displayName="Helpdesk Bot")
SERVICE_HOSTED = {"@odata.type": G + "serviceHostedMediaConfig"}
WELCOME_PROMPT = {
    "@odata.type": G + "mediaPrompt",
    "mediaInfo": {
        "@odata.type": G + "mediaInfo",
        "uri": WELCOME,
        "resourceId": "welcome",
    },
}


def call_json(**extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": G + "call",
        "id": CALL_ID,
        "state": "establishing",
        "direction": "outgoing",
        "callbackUri": CALLBACK,
        "myParticipantId": PARTICIPANT_ID,
        "tenantId": TENANT,
        **extra,
    }


def operation_json(
    kind: str, status: str, context: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": G + kind,
        "id": OPERATION_ID,
        "status": status,
    }
    if context is not None:
        body["clientContext"] = context
    return body


def participant_json(pid: str, identity: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": G + "participant",
        "id": pid,
        "info": {"@odata.type": G + "participantInfo", "identity": identity},
        "isMuted": False,
        "isInLobby": False,
    }


MEETING_JSON = {
    "@odata.type": G + "onlineMeeting",
    "id": "MSo3ZjZlNWQ0Yy0zYjJhLTQxOTAtOGY3ZS02ZDVjNGIzYTI5MTgqMCoqMTk6bWVldGluZ19abUUzWWpReQ",
    "subject": "Sev2 bridge",
    "startDateTime": "2025-03-04T15:00:00Z",
    "endDateTime": "2025-03-04T16:00:00Z",
    "joinWebUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
    "chatInfo": {"threadId": THREAD, "messageId": "0", "replyChainMessageId": None},
    "joinMeetingIdSettings": {
        "isPasscodeRequired": True,
        "joinMeetingId": "4315550987",
        "passcode": "kT9vQ2",
    },
    "participants": {
        "organizer": {
            "identity": {"user": {"id": ORGANIZER_ID, "tenantId": TENANT}},
            "role": "presenter",
        }
    },
}


def returns_call(result: Any) -> None:
    assert isinstance(result, CallResource)
    assert (result.id, result.state, result.my_participant_id) == (
        CALL_ID,
        "establishing",
        PARTICIPANT_ID,
    )


def returns_none(result: Any) -> None:
    assert result is None


def returns_ana(result: Any) -> None:
    assert isinstance(result, ParticipantResource)
    assert (result.id, result.identity.id, result.is_muted) == (
        PARTICIPANT_ID,
        ANA.id,
        False,
    )


def returns_meeting(result: Any) -> None:
    assert isinstance(result, OnlineMeetingResource)
    assert (result.join_meeting_id, result.passcode, result.organizer_id) == (
        "4315550987",
        "kT9vQ2",
        ORGANIZER_ID,
    )
    assert result.chat_info is not None
    assert result.chat_info["threadId"] == THREAD


def returns_operation(kind: str, status: str, final: bool) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        assert isinstance(result, OperationResource)
        assert (result.id, result.kind, result.status) == (OPERATION_ID, kind, status)
        assert result.is_final is final

    return check


@dataclass(frozen=True)
class Case:
    """One public method: how to call it, what must go over the wire, what comes back."""

    call: Callable[[GraphClient], Any]
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    response: dict[str, Any] | None
    check: Callable[[Any], None]


CASES: dict[str, Case] = {
    "create_call": Case(
        lambda c: c.create_call({"@odata.type": G + "call", "callbackUri": CALLBACK}),
        "POST",
        CALLS,
        {"@odata.type": G + "call", "callbackUri": CALLBACK},
        201,
        call_json(),
        returns_call,
    ),
    "place_peer_to_peer_call": Case(
        lambda c: c.place_peer_to_peer_call(
            ANA,
            callback_uri=CALLBACK,
            tenant_id=TENANT,
            prompts_to_prefetch=[MediaInfo(WELCOME, "welcome")],
            call_options=CallOptions(hide_bot_after_escalation=True),
            source=BOT,
        ),
        "POST",
        CALLS,
        {
            "@odata.type": G + "call",
            "callbackUri": CALLBACK,
            "requestedModalities": ["audio"],
            "mediaConfig": {
                **SERVICE_HOSTED,
                "preFetchMedia": [WELCOME_PROMPT["mediaInfo"]],
            },
            "source": {"@odata.type": G + "participantInfo", "identity": BOT_SET},
            "callOptions": {
                "@odata.type": G + "outgoingCallOptions",
                "hideBotAfterEscalation": True,
            },
            "tenantId": TENANT,
            "targets": [invitation(ANA_SET)],
        },
        201,
        call_json(),
        returns_call,
    ),
    "place_group_call": Case(
        lambda c: c.place_group_call([ANA, LEE], "Sev2 triage", callback_uri=CALLBACK),
        "POST",
        CALLS,
        {
            "@odata.type": G + "call",
            "callbackUri": CALLBACK,
            "requestedModalities": ["audio"],
            "mediaConfig": SERVICE_HOSTED,
            "targets": [invitation(ANA_SET), invitation(LEE_SET)],
            "subject": "Sev2 triage",
        },
        201,
        call_json(),
        returns_call,
    ),
    "join_meeting": Case(
        lambda c: c.join_meeting(
            ChatInfo(THREAD),
            OrganizerMeetingInfo(
                Identity("user", ORGANIZER_ID, "", TENANT),
                allow_conversation_without_host=True,
            ),
            TENANT,
            callback_uri=CALLBACK,
        ),
        "POST",
        CALLS,
        {
            "@odata.type": G + "call",
            "callbackUri": CALLBACK,
            "requestedModalities": ["audio"],
            "mediaConfig": SERVICE_HOSTED,
            "tenantId": TENANT,
            "chatInfo": {
                "@odata.type": G + "chatInfo",
                "threadId": THREAD,
                "messageId": "0",
            },
            "meetingInfo": {
                "@odata.type": G + "organizerMeetingInfo",
                "organizer": identity_set("user", ORGANIZER_ID, tenantId=TENANT),
                "allowConversationWithoutHost": True,
            },
        },
        201,
        call_json(),
        returns_call,
    ),
    "join_meeting_by_id": Case(
        lambda c: c.join_meeting_by_id(
            "4315550987", "kT9vQ2", TENANT, callback_uri=CALLBACK
        ),
        "POST",
        CALLS,
        {
            "@odata.type": G + "call",
            "callbackUri": CALLBACK,
            "requestedModalities": ["audio"],
            "mediaConfig": SERVICE_HOSTED,
            "tenantId": TENANT,
            "meetingInfo": {
                "@odata.type": G + "joinMeetingIdMeetingInfo",
                "joinMeetingId": "4315550987",
                "passcode": "kT9vQ2",
            },
        },
        201,
        call_json(),
        returns_call,
    ),
    "get_call": Case(
        lambda c: c.get_call(CALL_ID), "GET", CALL, None, 200, call_json(), returns_call
    ),
    "delete_call": Case(
        lambda c: c.delete_call(CALL_ID), "DELETE", CALL, None, 204, None, returns_none
    ),
    "keep_alive": Case(
        lambda c: c.keep_alive(CALL_ID),
        "POST",
        f"{CALL}/keepAlive",
        None,
        200,
        None,
        returns_none,
    ),
    "answer": Case(
        lambda c: c.answer(
            CALL_ID,
            callback_uri=CALLBACK,
            prompts_to_prefetch=[MediaInfo(WELCOME, "welcome")],
            call_options=CallOptions(is_delta_roster_enabled=True),
        ),
        "POST",
        f"{CALL}/answer",
        {
            "callbackUri": CALLBACK,
            "acceptedModalities": ["audio"],
            "mediaConfig": {
                **SERVICE_HOSTED,
                "preFetchMedia": [WELCOME_PROMPT["mediaInfo"]],
            },
            "callOptions": {
                "@odata.type": G + "incomingCallOptions",
                "isDeltaRosterEnabled": True,
            },
        },
        202,
        None,
        returns_none,
    ),
    "reject": Case(
        lambda c: c.reject(CALL_ID, "Busy"),
        "POST",
        f"{CALL}/reject",
        {"reason": "busy"},
        202,
        None,
        returns_none,
    ),
    "redirect": Case(
        lambda c: c.redirect(CALL_ID, [ANA, LEE], timeout=60, callback_uri=CALLBACK),
        "POST",
        f"{CALL}/redirect",
        {
            "targets": [invitation(ANA_SET), invitation(LEE_SET)],
            "timeout": 60,
            "callbackUri": CALLBACK,
        },
        202,
        None,
        returns_none,
    ),
    "transfer": Case(
        lambda c: c.transfer(
            CALL_ID,
            LEE,
            transferee=ANA,
            transferee_participant_id=PARTICIPANT_ID,
            client_context="xfer-1",
        ),
        "POST",
        f"{CALL}/transfer",
        {
            "transferTarget": invitation(LEE_SET),
            "transferee": {
                "@odata.type": G + "participantInfo",
                "identity": ANA_SET,
                "participantId": PARTICIPANT_ID,
            },
            "clientContext": "xfer-1",
        },
        202,
        None,
        returns_none,
    ),
    "mute": Case(
        lambda c: c.mute(CALL_ID, "m-1"),
        "POST",
        f"{CALL}/mute",
        {"clientContext": "m-1"},
        200,
        operation_json("muteParticipantOperation", "completed", "m-1"),
        returns_operation("muteParticipantOperation", "completed", True),
    ),
    "unmute": Case(
        lambda c: c.unmute(CALL_ID),
        "POST",
        f"{CALL}/unmute",
        {},
        200,
        operation_json("unmuteParticipantOperation", "Completed"),
        returns_operation("unmuteParticipantOperation", "completed", True),
    ),
    "play_prompt": Case(
        lambda c: c.play_prompt(CALL_ID, [MediaInfo(WELCOME, "welcome")], CALL_ID),
        "POST",
        f"{CALL}/playPrompt",
        {"prompts": [WELCOME_PROMPT], "clientContext": CALL_ID},
        200,
        operation_json("playPromptOperation", "running", CALL_ID),
        returns_operation("playPromptOperation", "running", False),
    ),
    "record_response": Case(
        lambda c: c.record_response(
            CALL_ID,
            prompt=MediaInfo(WELCOME, "welcome"),
            max_record_duration=10,
            stop_tones=["#", "*", "1"],
            client_context="rec-1",
        ),
        "POST",
        f"{CALL}/recordResponse",
        {
            "prompts": [WELCOME_PROMPT],
            "bargeInAllowed": False,
            "initialSilenceTimeoutInSeconds": 5,
            "maxSilenceTimeoutInSeconds": 5,
            "maxRecordDurationInSeconds": 10,
            "playBeep": True,
            "stopTones": ["#", "*", "1"],
            "clientContext": "rec-1",
        },
        200,
        operation_json("recordOperation", "running", "rec-1"),
        returns_operation("recordOperation", "running", False),
    ),
    "cancel_media_processing": Case(
        lambda c: c.cancel_media_processing(CALL_ID, "c-1"),
        "POST",
        f"{CALL}/cancelMediaProcessing",
        {"clientContext": "c-1"},
        200,
        operation_json("cancelMediaProcessingOperation", "completed", "c-1"),
        returns_operation("cancelMediaProcessingOperation", "completed", True),
    ),
    "subscribe_to_tone": Case(
        lambda c: c.subscribe_to_tone(CALL_ID, CALL_ID),
        "POST",
        f"{CALL}/subscribeToTone",
        {"clientContext": CALL_ID},
        200,
        operation_json("subscribeToToneOperation", "completed", CALL_ID),
        returns_operation("subscribeToToneOperation", "completed", True),
    ),
    "send_dtmf_tones": Case(
        lambda c: c.send_dtmf_tones(CALL_ID, ["tone1", "pound"], 200, "d-1"),
        "POST",
        f"{CALL}/sendDtmfTones",
        {
            "tones": ["tone1", "pound"],
            "delayBetweenTonesMs": 200,
            "clientContext": "d-1",
        },
        200,
        operation_json("sendDtmfTonesOperation", "running", "d-1"),
        returns_operation("sendDtmfTonesOperation", "running", False),
    ),
    "change_screen_sharing_role": Case(
        lambda c: c.change_screen_sharing_role(CALL_ID, "sharer"),
        "POST",
        f"{CALL}/changeScreenSharingRole",
        {"role": "sharer"},
        202,
        None,
        returns_none,
    ),
    "update_recording_status": Case(
        lambda c: c.update_recording_status(CALL_ID, "recording", "r-1"),
        "POST",
        f"{CALL}/updateRecordingStatus",
        {"status": "recording", "clientContext": "r-1"},
        200,
        operation_json("updateRecordingStatusOperation", "completed", "r-1"),
        returns_operation("updateRecordingStatusOperation", "completed", True),
    ),
    "get_participant": Case(
        lambda c: c.get_participant(CALL_ID, PARTICIPANT_ID),
        "GET",
        PARTICIPANT,
        None,
        200,
        participant_json(PARTICIPANT_ID, ANA_SET),
        returns_ana,
    ),
    "invite_participants": Case(
        lambda c: c.invite_participants(
            CALL_ID, [LEE], replaces_call_id="p2p-call", client_context="inv-7c1d"
        ),
        "POST",
        f"{CALL}/participants/invite",
        {
            "participants": [invitation(LEE_SET, replacesCallId="p2p-call")],
            "clientContext": "inv-7c1d",
        },
        200,
        operation_json("inviteParticipantsOperation", "Running", "inv-7c1d"),
        returns_operation("inviteParticipantsOperation", "running", False),
    ),
    "mute_participant": Case(
        lambda c: c.mute_participant(CALL_ID, PARTICIPANT_ID, "pm-1"),
        "POST",
        f"{PARTICIPANT}/mute",
        {"clientContext": "pm-1"},
        200,
        operation_json("muteParticipantOperation", "completed", "pm-1"),
        returns_operation("muteParticipantOperation", "completed", True),
    ),
    "remove_participant": Case(
        lambda c: c.remove_participant(CALL_ID, PARTICIPANT_ID),
        "DELETE",
        PARTICIPANT,
        None,
        204,
        None,
        returns_none,
    ),
    "start_hold_music": Case(
        lambda c: c.start_hold_music(
            CALL_ID, PARTICIPANT_ID, MediaInfo(WELCOME, "welcome"), "h-1"
        ),
        "POST",
        f"{PARTICIPANT}/startHoldMusic",
        {"customPrompt": WELCOME_PROMPT, "clientContext": "h-1"},
        202,
        operation_json("startHoldMusicOperation", "running", "h-1"),
        returns_operation("startHoldMusicOperation", "running", False),
    ),
    "stop_hold_music": Case(
        lambda c: c.stop_hold_music(CALL_ID, PARTICIPANT_ID, "h-2"),
        "POST",
        f"{PARTICIPANT}/stopHoldMusic",
        {"clientContext": "h-2"},
        202,
        operation_json("stopHoldMusicOperation", "running", "h-2"),
        returns_operation("stopHoldMusicOperation", "running", False),
    ),
    "create_online_meeting": Case(
        lambda c: c.create_online_meeting(
            ORGANIZER_ID,
            "Sev2 bridge",
            datetime(2025, 3, 4, 15, tzinfo=UTC),
            datetime(2025, 3, 4, 16, tzinfo=UTC),
            attendees=[ANA],
            is_passcode_required=True,
        ),
        "POST",
        f"/users/{ORGANIZER_ID}/onlineMeetings",
        {
            "subject": "Sev2 bridge",
            "startDateTime": "2025-03-04T15:00:00Z",
            "endDateTime": "2025-03-04T16:00:00Z",
            "joinMeetingIdSettings": {"isPasscodeRequired": True},
            "participants": {"attendees": [{"identity": ANA_SET, "role": "attendee"}]},
        },
        201,
        MEETING_JSON,
        returns_meeting,
    ),
    "create_or_get_online_meeting": Case(
        lambda c: c.create_or_get_online_meeting(
            ORGANIZER_ID,
            "5f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
            "Sev2 bridge",
            datetime(2025, 3, 4, 15, tzinfo=UTC),
            datetime(2025, 3, 4, 16, tzinfo=UTC),
        ),
        "POST",
        f"/users/{ORGANIZER_ID}/onlineMeetings/createOrGet",
        {
            "subject": "Sev2 bridge",
            "startDateTime": "2025-03-04T15:00:00Z",
            "endDateTime": "2025-03-04T16:00:00Z",
            "externalId": "5f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
        },
        200,
        MEETING_JSON,
        returns_meeting,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_method_sends_its_contract_request_and_parses_the_answer(
    name: str, graph_client: GraphClient, graph: respx.Router
) -> None:
    case = CASES[name]
    route = graph.route(method=case.method, url=f"{BASE_URL}{case.path}").respond(
        case.status, json=case.response
    )

    result = case.call(graph_client)

    assert route.call_count == 1
    request = route.calls.last.request
    if case.body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == case.body
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["Content-Type"] == "application/json"
    uuid.UUID(request.headers["client-request-id"])
    case.check(result)


def test_every_public_method_has_a_wire_test() -> None:
    public = {
        name
        for name in vars(GraphClient)
        if not name.startswith("_") and callable(getattr(GraphClient, name))
    }
    # app_grant sends nothing to Graph: it reads the token (test below).
    lifecycle = {
        "for_tenant",
        "close",
        "list_participants",
        "download_recording",
        "app_grant",
    }
    assert public - lifecycle == set(CASES)


def test_app_grant_reads_the_roles_of_the_token_requests_carry() -> None:
    key = "a-signing-key-only-graph-would-check-0123"
    old = jwt.encode({"roles": ["Calls.Initiate.All"]}, key, algorithm="HS256")
    new = jwt.encode(
        {"roles": ["Calls.Initiate.All", "Calls.AccessMedia.All"]},
        key,
        algorithm="HS256",
    )
    tokens = StaticTokenProvider(old, new)
    client = GraphClient(BASE_URL, tokens)

    cached = client.app_grant()
    fresh = client.app_grant(fresh=True)

    assert cached.roles == {"Calls.Initiate.All"}
    assert fresh.roles == {"Calls.Initiate.All", "Calls.AccessMedia.All"}
    assert tokens.invalidated == [old]


def test_list_participants_follows_next_links(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    route = graph.get(f"{BASE_URL}{CALL}/participants")
    route.side_effect = [
        httpx.Response(
            200,
            json={
                "@odata.context": "ignored",
                "value": [participant_json("p-1", ANA_SET)],
                "@odata.nextLink": f"{BASE_URL}{CALL}/participants?$skiptoken=abc",
            },
        ),
        httpx.Response(200, json={"value": [participant_json("p-2", LEE_SET)]}),
    ]

    roster = graph_client.list_participants(CALL_ID)

    assert [p.id for p in roster] == ["p-1", "p-2"]
    assert [p.identity.id for p in roster] == [ANA.id, LEE.id]
    assert route.calls[1].request.url.params["$skiptoken"] == "abc"


def test_a_next_link_to_another_host_is_refused(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.get(f"{BASE_URL}{CALL}/participants").respond(
        200, json={"value": [], "@odata.nextLink": "https://evil.test/steal"}
    )

    with pytest.raises(GraphError, match="another host"):
        graph_client.list_participants(CALL_ID)


def test_download_recording_sends_the_recording_token_not_ours(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    location = "https://media.test/recordings/abc.wav"
    route = graph.get(location).respond(200, content=b"RIFF....WAVE")

    audio = graph_client.download_recording(location, "recording-token")

    assert audio == b"RIFF....WAVE"
    assert route.calls.last.request.headers["Authorization"] == "Bearer recording-token"


def test_operation_id_falls_back_to_the_location_header(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.post(f"{BASE_URL}{CALL}/playPrompt").respond(
        200,
        json={"@odata.type": G + "playPromptOperation", "status": "Running"},
        headers={"Location": f"{BASE_URL}{CALL}/operations/{OPERATION_ID}"},
    )

    operation = graph_client.play_prompt(CALL_ID, [WELCOME])

    assert (operation.id, operation.status, operation.is_final) == (
        OPERATION_ID,
        "running",
        False,
    )


def test_call_id_falls_back_to_the_location_header(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.post(f"{BASE_URL}{CALLS}").respond(
        201,
        json={"state": "establishing"},
        headers={"Location": f"{BASE_URL}{CALLS}/{CALL_ID}"},
    )

    call = graph_client.place_peer_to_peer_call(ANA, callback_uri=CALLBACK)

    assert call.id == CALL_ID


def test_a_given_client_request_id_is_sent_and_reused_across_retries(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/keepAlive")
    route.side_effect = [httpx.Response(503), httpx.Response(200)]

    graph_client.keep_alive(CALL_ID, client_request_id="stored-id-1")

    assert [c.request.headers["client-request-id"] for c in route.calls] == [
        "stored-id-1",
        "stored-id-1",
    ]


def test_each_call_gets_a_fresh_client_request_id(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/keepAlive").respond(200)

    graph_client.keep_alive(CALL_ID)
    graph_client.keep_alive(CALL_ID)

    first, second = (c.request.headers["client-request-id"] for c in route.calls)
    assert first != second


def test_429_with_fractional_retry_after_is_retried_once_after_that_delay(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/mute")
    route.side_effect = [
        httpx.Response(
            429,
            headers={"Retry-After": "1.5"},
            json=error_body("TooManyRequests", "Please retry again later."),
        ),
        httpx.Response(
            200, json=operation_json("muteParticipantOperation", "completed")
        ),
    ]

    operation = graph_client.mute(CALL_ID)

    assert operation.is_final
    assert route.call_count == 2
    assert sleeps == [1.5]


def test_503_twice_then_success_backs_off_exponentially(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.get(f"{BASE_URL}{CALL}")
    route.side_effect = [
        httpx.Response(503),
        httpx.Response(503),
        httpx.Response(200, json=call_json()),
    ]

    call = graph_client.get_call(CALL_ID)

    assert call.id == CALL_ID
    assert route.call_count == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_an_exhausted_budget_raises_the_throttled_error(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/playPrompt").respond(
        429,
        headers={"Retry-After": "4", "request-id": "req-429"},
        json=error_body("TooManyRequests", "Please retry again later."),
    )

    with pytest.raises(GraphThrottledError) as caught:
        graph_client.play_prompt(CALL_ID, [WELCOME])

    err = caught.value
    assert (err.status, err.code, err.message) == (
        429,
        "TooManyRequests",
        "Please retry again later.",
    )
    assert err.retry_after == 4.0
    assert err.retryable
    assert err.request_id == "req-429"
    # Budget 10 s: two 4 s waits fit, a third would not.
    assert sleeps == [4.0, 4.0]
    assert route.call_count == 3


def test_retry_after_longer_than_the_budget_raises_at_once(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=60)
    graph.get(f"{BASE_URL}{CALL}").respond(
        503, headers={"Retry-After": format_datetime(when, usegmt=True)}
    )

    with pytest.raises(GraphTransientError) as caught:
        graph_client.get_call(CALL_ID)

    assert caught.value.retry_after is not None
    assert 55 < caught.value.retry_after <= 60
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error_class", "code", "message"),
    [
        (400, GraphBadRequestError, "BadRequest", "Invalid combination."),
        (403, GraphForbiddenError, "Forbidden", "Application is not authorized."),
        (404, GraphNotFoundError, "NotFound", "Call not found."),
        (409, GraphConflictError, "Conflict", "The call is being transferred."),
    ],
)
def test_client_errors_map_to_typed_permanent_errors(
    graph_client: GraphClient,
    graph: respx.Router,
    sleeps: list[float],
    status: int,
    error_class: type[GraphError],
    code: str,
    message: str,
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/subscribeToTone").respond(
        status,
        json=error_body(
            code, message, **{"request-id": "req-1", "client-request-id": "crid-1"}
        ),
    )

    with pytest.raises(error_class) as caught:
        graph_client.subscribe_to_tone(CALL_ID, client_request_id="crid-1")

    err = caught.value
    assert isinstance(err, GraphPermanentError)
    assert (err.status, err.code, err.message) == (status, code, message)
    assert (err.request_id, err.client_request_id) == ("req-1", "crid-1")
    assert not err.retryable
    assert str(err) == f"Graph {status} {code}: {message} (request-id req-1)"
    assert route.call_count == 1
    assert sleeps == []


def test_the_error_body_is_read_case_insensitively(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.get(f"{BASE_URL}{CALL}").respond(
        404,
        json={
            "error": {
                "Code": "NotFound",
                "Message": "Gone.",
                "innererror": {
                    "request-id": "req-lower",
                    "code": "CallNotFound",
                    "innerError": {"code": "CallTerminated"},
                },
            }
        },
    )

    with pytest.raises(GraphNotFoundError) as caught:
        graph_client.get_call(CALL_ID)

    err = caught.value
    assert (err.code, err.message, err.request_id) == ("NotFound", "Gone.", "req-lower")
    assert err.inner_codes == ("CallNotFound", "CallTerminated")


def test_a_non_json_error_body_still_gives_a_typed_error(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.post(f"{BASE_URL}{CALL}/answer").respond(
        400, text="<html><body>Bad gateway thing</body></html>"
    )

    with pytest.raises(GraphBadRequestError) as caught:
        graph_client.answer(CALL_ID)

    err = caught.value
    assert (err.status, err.code, err.message) == (400, "", "Bad Request")
    assert str(err) == "Graph 400: Bad Request"


def test_a_non_json_5xx_is_retried(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.delete(f"{BASE_URL}{CALL}")
    route.side_effect = [httpx.Response(502, text="Bad Gateway"), httpx.Response(204)]

    graph_client.delete_call(CALL_ID)

    assert route.call_count == 2
    assert len(sleeps) == 1


def test_a_transport_error_is_retried(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/keepAlive")
    route.side_effect = [httpx.ConnectError("connection refused"), httpx.Response(200)]

    graph_client.keep_alive(CALL_ID)

    assert route.call_count == 2
    assert len(sleeps) == 1


def test_transport_errors_beyond_the_budget_raise_a_transient_error(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.post(f"{BASE_URL}{CALL}/keepAlive").mock(
        side_effect=httpx.ReadTimeout("slow")
    )

    with pytest.raises(GraphTransientError) as caught:
        graph_client.keep_alive(CALL_ID, client_request_id="crid-t")

    err = caught.value
    assert (err.status, err.code, err.client_request_id) == (0, "ReadTimeout", "crid-t")
    assert err.retryable
    assert isinstance(err.__cause__, httpx.ReadTimeout)


def test_401_refreshes_the_token_once(
    graph_client: GraphClient, graph: respx.Router, static_tokens: StaticTokenProvider
) -> None:
    route = graph.get(f"{BASE_URL}{CALL}")
    route.side_effect = [httpx.Response(401), httpx.Response(200, json=call_json())]

    graph_client.get_call(CALL_ID)

    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert static_tokens.invalidated == ["token-1"]


def test_a_second_401_raises_auth_error(
    graph_client: GraphClient, graph: respx.Router, sleeps: list[float]
) -> None:
    route = graph.get(f"{BASE_URL}{CALL}").respond(
        401, json=error_body("InvalidAuthenticationToken", "Access token has expired.")
    )

    with pytest.raises(GraphAuthError) as caught:
        graph_client.get_call(CALL_ID)

    assert caught.value.code == "InvalidAuthenticationToken"
    assert route.call_count == 2
    assert sleeps == []


def test_for_tenant_asks_the_provider_for_that_tenants_token(
    graph_client: GraphClient, graph: respx.Router, static_tokens: StaticTokenProvider
) -> None:
    graph.post(f"{BASE_URL}{CALL}/keepAlive").respond(200)

    graph_client.for_tenant("customer-tenant").keep_alive(CALL_ID)
    graph_client.keep_alive(CALL_ID)

    assert static_tokens.tenants == ["customer-tenant", None]


def test_logs_carry_ids_but_never_tokens_or_bodies(
    graph_client: GraphClient, graph: respx.Router, caplog: pytest.LogCaptureFixture
) -> None:
    route = graph.post(f"{BASE_URL}{CALL}/playPrompt")
    route.side_effect = [
        httpx.Response(503, headers={"Retry-After": "0.1"}),
        httpx.Response(400, json=error_body("BadRequest", "secret-ish detail")),
    ]
    caplog.set_level(logging.DEBUG, logger="callbot.graph")

    with pytest.raises(GraphBadRequestError):
        graph_client.play_prompt(CALL_ID, [WELCOME], client_context="ctx-private")

    assert caplog.records
    for record in caplog.records:
        dumped = repr(vars(record))
        assert "token-1" not in dumped
        assert "ctx-private" not in dumped
        assert "secret-ish" not in dumped
    assert {
        r.client_request_id for r in caplog.records if hasattr(r, "client_request_id")
    }


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (lambda c: c.mute(CALL_ID, "x" * 257), "clientContext"),
        (lambda c: c.play_prompt(CALL_ID, [WELCOME] * 21), "1 to 20 prompts"),
        (lambda c: c.play_prompt(CALL_ID, []), "1 to 20 prompts"),
        (lambda c: c.play_prompt(CALL_ID, ["not-a-url"]), "absolute http"),
        (lambda c: c.send_dtmf_tones(CALL_ID, ["tone1", "1"]), "DTMF tone name"),
        (lambda c: c.redirect(CALL_ID, []), "1 to 25 targets"),
        (lambda c: c.redirect(CALL_ID, [ANA] * 26), "1 to 25 targets"),
        (lambda c: c.redirect(CALL_ID, [ANA], timeout=14), "15 to 90"),
        (lambda c: c.redirect(CALL_ID, [ANA], timeout=91), "15 to 90"),
        (lambda c: c.record_response(CALL_ID, max_record_duration=121), "1 to 120"),
        (lambda c: c.record_response(CALL_ID, initial_silence_timeout=0), "1 to 120"),
        (lambda c: c.record_response(CALL_ID, stop_tones=["pound"]), "DTMF character"),
        (lambda c: c.invite_participants(CALL_ID, [ANA] * 6), "1 to 5 participants"),
        (
            lambda c: c.invite_participants(CALL_ID, [ANA, LEE], replaces_call_id="x"),
            "only the first",
        ),
        (lambda c: c.place_group_call([ANA], callback_uri=CALLBACK), "2 to 5 targets"),
        (lambda c: c.change_screen_sharing_role(CALL_ID, "presenter"), "viewer"),
        (lambda c: c.update_recording_status(CALL_ID, "paused"), "recording status"),
        (lambda c: c.reject(CALL_ID, "later"), "reject reason"),
        (lambda c: c.answer(CALL_ID, accepted_modalities=["data"]), "modality"),
        (
            lambda c: c.answer(CALL_ID, media_config={"blob": "x"}),
            "@odata.type",
        ),
        (lambda c: c.get_call(""), "call_id is required"),
        (
            lambda c: c.create_online_meeting(
                "u",
                "s",
                datetime(2025, 3, 4, 15),  # noqa: DTZ001
                datetime(2025, 3, 4, 16),  # noqa: DTZ001
            ),
            "timezone-aware",
        ),
        (
            lambda c: c.create_or_get_online_meeting(
                "u",
                "",
                "s",
                datetime(2025, 3, 4, 15, tzinfo=UTC),
                datetime(2025, 3, 4, 16, tzinfo=UTC),
            ),
            "externalId",
        ),
        (
            lambda c: c.join_meeting(
                None,
                {"allowConversationWithoutHost": True},
                TENANT,
                callback_uri=CALLBACK,
            ),
            "meetingInfo",
        ),
    ],
)
def test_contract_limits_are_checked_before_any_http(
    graph_client: GraphClient,
    graph: respx.Router,
    call: Callable[[GraphClient], Any],
    complaint: str,
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call(graph_client)

    assert graph.calls.call_count == 0


def test_a_stored_meeting_info_without_odata_type_rejoins_with_its_type(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    route = graph.post(f"{BASE_URL}{CALLS}").respond(201, json=call_json())

    graph_client.join_meeting(
        None, TokenMeetingInfo("tok-123"), TENANT, callback_uri=CALLBACK
    )
    graph_client.join_meeting(None, {"token": "tok-123"}, TENANT, callback_uri=CALLBACK)

    first, second = (sent_json(route, i)["meetingInfo"] for i in (0, 1))
    assert (
        first == second == {"@odata.type": G + "tokenMeetingInfo", "token": "tok-123"}
    )


def test_a_malformed_success_body_is_an_invalid_response_error(
    graph_client: GraphClient, graph: respx.Router
) -> None:
    graph.get(f"{BASE_URL}{CALL}").respond(200, json=["not", "an", "object"])

    with pytest.raises(GraphError) as caught:
        graph_client.get_call(CALL_ID)

    assert caught.value.code == "InvalidResponse"
    assert not caught.value.retryable


def test_get_graph_client_is_built_from_settings_once_per_process(
    settings: Any,
) -> None:
    settings.GRAPH_BASE_URL = "https://graph.example.test/v1.0"
    settings.GRAPH_AUTHORITY = f"https://login.example.test/{TENANT}"
    settings.GRAPH_CA_BUNDLE = ""
    factory.reset_graph_client()
    try:
        first = factory.get_graph_client()
        assert factory.get_graph_client() is first
        assert first.base_url == "https://graph.example.test/v1.0"
    finally:
        factory.reset_graph_client()
    assert factory.get_graph_client() is not first
    factory.reset_graph_client()


def test_errors_survive_pickling_for_celery() -> None:
    err = GraphThrottledError(
        429, "TooManyRequests", "Later.", request_id="r", retry_after=2.5
    )

    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes

    assert type(copy) is GraphThrottledError
    assert (copy.status, copy.code, copy.message, copy.retry_after) == (
        429,
        "TooManyRequests",
        "Later.",
        2.5,
    )
    assert copy.retryable
    assert str(copy) == str(err)


def test_idle_connections_to_graph_are_kept_for_a_minute() -> None:
    """Not httpx's 5 s: the pool's second connection, used only when requests
    from two threads overlap, would be dropped between uses and the next
    overlapping request (an Answer click) would pay a new TLS handshake."""
    wire = GraphTransport("https://graph.example", StaticTokenProvider("t"))
    pool = wire._client()._transport._pool  # the one httpx builds for us

    assert KEEPALIVE_SECONDS == 60
    assert pool._keepalive_expiry == KEEPALIVE_SECONDS
    wire.close()
