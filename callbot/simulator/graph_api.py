"""HTTP routes of Graph's calls and online-meetings API (contract §6, §10, §11).

Every route goes through ``graph_endpoint``, which in order: applies Graph-side faults
(slow, 429, 500, 503), authenticates the bearer token (401 in Graph's error shape),
runs the handler inside the engine's request scope, renders ``GraphError`` as Graph's
error body, stamps ``request-id``/``client-request-id``, and releases the held
notifications as a background task that runs only after the response was sent.
Served under ``/v1.0`` and ``/beta``; ``/app/calls`` is the legacy alias (§1.1).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from callbot.simulator import validate
from callbot.simulator.emulator import Emulator, emulator_of
from callbot.simulator.errors import (
    GraphError,
    bad_request,
    error_body,
    not_found,
    unknown_segment,
)
from callbot.simulator.identity import InvalidTokenError
from callbot.simulator.model import Call, Operation
from callbot.simulator.roster import participants_json

Handler = Callable[[Request, Emulator, frozenset[str]], Awaitable[Response]]


async def _apply_faults(emulator: Emulator, request: Request) -> None:
    path = request.url.path
    slow = emulator.faults.take("graph_slow", path)
    if slow is not None:
        # Graph has the whole request before it is slow to answer: a client that
        # gives up waiting (its worker died) does not undo what it asked for.
        await request.body()
        await asyncio.sleep(float(slow.params.get("delay_ms", 1000)) / 1000)
    throttled = emulator.faults.take("graph_429", path)
    if throttled is not None:
        retry_after = throttled.params.get("retry_after", 1)
        raise GraphError(
            429,
            "TooManyRequests",
            "Please retry again later.",
            {"Retry-After": str(retry_after)},
        )
    if emulator.faults.take("graph_500", path) is not None:
        raise GraphError(
            500, "InternalServerError", "An internal server error occurred."
        )
    unavailable = emulator.faults.take("graph_503", path)
    if unavailable is not None:
        headers = {}
        if "retry_after" in unavailable.params:
            headers["Retry-After"] = str(unavailable.params["retry_after"])
        raise GraphError(
            503,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
            headers,
        )


def _authenticate(emulator: Emulator, request: Request) -> frozenset[str]:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        claims = emulator.identity.verify_graph_token(token.strip())
    except InvalidTokenError as exc:
        raise GraphError(401, "InvalidAuthenticationToken", str(exc)) from exc
    return frozenset(str(role) for role in claims.get("roles", []))


def graph_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with faults, authentication, error shape and deferred release."""

    async def endpoint(request: Request) -> Response:
        received_at = time.time()
        emulator = emulator_of(request)
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or str(
            uuid.uuid4()
        )
        held = None
        try:
            await _apply_faults(emulator, request)
            roles = _authenticate(emulator, request)
            emulator.engine.seen_base = f"{request.url.scheme}://{request.url.netloc}"
            with emulator.engine.request_scope() as held:
                response = await handler(request, emulator, roles)
        except GraphError as exc:
            body = error_body(exc.code, exc.message, request_id, client_request_id)
            response = JSONResponse(body, status_code=exc.status, headers=exc.headers)
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = client_request_id
        emulator.graph_statuses[str(response.status_code)] += 1
        emulator.graph_requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "clientRequestId": client_request_id,
                "receivedAt": received_at,
            }
        )
        if held:
            response.background = BackgroundTask(
                emulator.engine.release_after_response, held
            )
        return response

    return endpoint


async def body_of(request: Request) -> dict[str, Any]:
    """The JSON object body; an empty body reads as ``{}`` (keepAlive, mute...)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def _prefix(request: Request) -> str:
    return "/beta" if request.url.path.startswith("/beta") else "/v1.0"


def _operation_response(
    request: Request, call: Call, operation: Operation, status: int = 200
) -> Response:
    location = f"{request.url.scheme}://{request.url.netloc}{_prefix(request)}/communications/calls/{call.id}/operations/{operation.id}"
    return JSONResponse(
        operation.to_json(), status_code=status, headers={"Location": location}
    )


# --- calls ---------------------------------------------------------------------------
@graph_endpoint
async def create_call(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.calling.create_call(await body_of(request), roles)
    location = f"{request.url.scheme}://{request.url.netloc}{_prefix(request)}/communications/calls/{call.id}"
    return JSONResponse(call.to_json(), status_code=201, headers={"Location": location})


@graph_endpoint
async def get_call(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    return JSONResponse(
        emulator.engine.live_call(request.path_params["call_id"]).to_json()
    )


@graph_endpoint
async def delete_call(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    emulator.engine.hang_up(emulator.engine.live_call(request.path_params["call_id"]))
    return Response(status_code=204)


_NO_CONTENT_ACTIONS = {
    "answer",
    "reject",
    "redirect",
    "transfer",
    "changescreensharingrole",
}


@graph_endpoint
async def call_action(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    """``POST /communications/calls/{id}/{action}`` for every call-level action."""
    action = request.path_params["action"].lower().removeprefix("microsoft.graph.")
    engine = emulator.engine
    call = engine.live_call(request.path_params["call_id"])
    body = await body_of(request)
    if action == "keepalive":
        engine.keep_alive(call)
        return Response(status_code=200)
    if action in _NO_CONTENT_ACTIONS:
        if action == "answer":
            engine.answer(call, body, roles)
        elif action == "reject":
            engine.reject(call, body)
        elif action == "redirect":
            engine.redirect(call, body, roles)
        elif action == "transfer":
            engine.transfer(call, body, roles)
        else:
            emulator.participants.screen_sharing_role(call, body, roles)
        return Response(status_code=202)
    operation: Operation
    if action in ("mute", "unmute"):
        operation = emulator.participants.mute_self(call, body, muted=action == "mute")
    elif action == "playprompt":
        operation = emulator.media.play_prompt(call, body)
    elif action in ("recordresponse", "record"):
        operation = emulator.media.record_response(call, body, roles)
    elif action == "cancelmediaprocessing":
        operation = emulator.media.cancel(call, body)
    elif action == "subscribetotone":
        operation = emulator.media.subscribe_to_tone(call, body, roles)
    elif action == "senddtmftones":
        operation = emulator.media.send_dtmf(call, body)
    elif action == "updaterecordingstatus":
        operation = emulator.participants.recording_status(call, body, roles)
    else:
        raise unknown_segment(request.path_params["action"])
    return _operation_response(request, call, operation)


@graph_endpoint
async def get_operation(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.engine.live_call(request.path_params["call_id"])
    operation = call.operations.get(request.path_params["operation_id"])
    if operation is None:
        raise not_found(f"Operation '{request.path_params['operation_id']}'")
    return JSONResponse(operation.to_json())


# --- participants --------------------------------------------------------------------
@graph_endpoint
async def list_participants(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.engine.live_call(request.path_params["call_id"])
    context = f"https://graph.microsoft.com/v1.0/$metadata#communications/calls('{call.id}')/participants"
    return JSONResponse({"@odata.context": context, "value": participants_json(call)})


@graph_endpoint
async def get_participant(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.engine.live_call(request.path_params["call_id"])
    participant_id = request.path_params["participant_id"]
    for entry in participants_json(call):
        if entry["id"] == participant_id:
            return JSONResponse(entry)
    raise not_found(f"Participant '{participant_id}'")


@graph_endpoint
async def invite(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.engine.live_call(request.path_params["call_id"])
    operation = emulator.participants.invite(call, await body_of(request), roles)
    return _operation_response(request, call, operation)


@graph_endpoint
async def participant_action(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.engine.live_call(request.path_params["call_id"])
    participant_id = request.path_params["participant_id"]
    action = request.path_params["action"].lower().removeprefix("microsoft.graph.")
    body = await body_of(request)
    if action == "mute":
        return _operation_response(
            request, call, emulator.participants.mute_other(call, participant_id, body)
        )
    if action in ("startholdmusic", "stopholdmusic"):
        operation = emulator.participants.hold_music(
            call, participant_id, body, start=action == "startholdmusic"
        )
        # The two hold-music actions are the only operation-returning ones answered
        # 202 rather than 200 (contract §6.1).
        return _operation_response(request, call, operation, status=202)
    # Graph has no participant ``unmute`` (contract §6.16: "There is no API to
    # unmute others"); like any segment it does not know, OData answers 400.
    raise unknown_segment(request.path_params["action"])


@graph_endpoint
async def remove_participant(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    call = emulator.engine.live_call(request.path_params["call_id"])
    emulator.participants.remove(call, request.path_params["participant_id"], roles)
    return Response(status_code=204)


# --- online meetings -----------------------------------------------------------------
_FILTER = re.compile(
    r"^\s*(JoinWebUrl|joinMeetingIdSettings/joinMeetingId)\s+eq\s+'(.*)'\s*$",
    re.IGNORECASE,
)


@graph_endpoint
async def create_meeting(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    """``POST /users/{userId}/onlineMeetings`` (contract §10.1)."""
    emulator.engine.require(roles, "OnlineMeetings.ReadWrite.All")
    body = await body_of(request)
    settings = validate.sub(body, "joinMeetingIdSettings")
    attendees = validate.sub(body, "participants").get("attendees")
    if not isinstance(attendees, list):
        attendees = []
    for name in ("subject", "startDateTime", "endDateTime"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request(f"'{name}' must be a string.")
    meeting = emulator.meetings.create(
        request.path_params["user_id"],
        subject=str(body.get("subject") or ""),
        start=body.get("startDateTime"),
        end=body.get("endDateTime"),
        passcode_required=bool(settings.get("isPasscodeRequired")),
        attendees=attendees,
    )
    emulator.events.add(
        "graph", f"online meeting '{meeting.subject}' created", meetingId=meeting.id
    )
    return JSONResponse(meeting.to_json(), status_code=201)


@graph_endpoint
async def create_or_get_meeting(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    """``POST /users/{userId}/onlineMeetings/createOrGet`` (contract §10.2).

    ``externalId`` is required; the organizer and it name the meeting. A new one is
    201; one made earlier under the same key is 200 with that meeting, whatever
    the rest of the body says. The call takes ``subject``, ``startDateTime``,
    ``endDateTime`` and ``participants``, nothing more.
    """
    emulator.engine.require(roles, "OnlineMeetings.ReadWrite.All")
    body = await body_of(request)
    external_id = body.get("externalId")
    if not isinstance(external_id, str) or not external_id.strip():
        raise bad_request("'externalId' is required.")
    for name in ("subject", "startDateTime", "endDateTime"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise bad_request(f"'{name}' must be a string.")
    if body.get("endDateTime") and not body.get("startDateTime"):
        raise bad_request("'endDateTime' needs a 'startDateTime'.")
    organizer = request.path_params["user_id"]
    found = emulator.meetings.by_external_id(organizer, external_id)
    if found is not None:
        return JSONResponse(found.to_json(), status_code=200)
    attendees = validate.sub(body, "participants").get("attendees")
    meeting = emulator.meetings.create(
        organizer,
        subject=str(body.get("subject") or ""),
        start=body.get("startDateTime"),
        end=body.get("endDateTime"),
        attendees=attendees if isinstance(attendees, list) else [],
        external_id=external_id,
    )
    emulator.events.add(
        "graph",
        f"online meeting '{meeting.subject}' created (externalId {external_id})",
        meetingId=meeting.id,
    )
    return JSONResponse(meeting.to_json(), status_code=201)


@graph_endpoint
async def find_meetings(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    """``GET /users/{userId}/onlineMeetings?$filter=...`` (contract §10.2)."""
    emulator.engine.require(
        roles, "OnlineMeetings.Read.All", "OnlineMeetings.ReadWrite.All"
    )
    raw = request.query_params.get("$filter")
    match = _FILTER.match(raw or "")
    if match is None:
        raise bad_request(
            "Filter by JoinWebUrl or joinMeetingIdSettings/joinMeetingId is required."
        )
    value = match.group(2).replace("''", "'")
    if match.group(1).lower() == "joinweburl":
        meeting = emulator.meetings.by_join_url(value)
    else:
        meeting = emulator.meetings.by_join_id(value)
    found = (
        [meeting.to_json()]
        if meeting and meeting.organizer_id == request.path_params["user_id"]
        else []
    )
    return JSONResponse({"value": found})


@graph_endpoint
async def get_meeting(
    request: Request, emulator: Emulator, roles: frozenset[str]
) -> Response:
    emulator.engine.require(
        roles, "OnlineMeetings.Read.All", "OnlineMeetings.ReadWrite.All"
    )
    meeting = emulator.meetings.by_id.get(request.path_params["meeting_id"])
    if meeting is None or meeting.organizer_id != request.path_params["user_id"]:
        raise not_found(f"Online meeting '{request.path_params['meeting_id']}'")
    return JSONResponse(meeting.to_json())


def _call_routes() -> list[BaseRoute]:
    return [
        Route("/", create_call, methods=["POST"]),
        Route("/{call_id}", get_call, methods=["GET"]),
        Route("/{call_id}", delete_call, methods=["DELETE"]),
        Route("/{call_id}/participants", list_participants, methods=["GET"]),
        Route("/{call_id}/participants/invite", invite, methods=["POST"]),
        Route(
            "/{call_id}/participants/{participant_id}", get_participant, methods=["GET"]
        ),
        Route(
            "/{call_id}/participants/{participant_id}",
            remove_participant,
            methods=["DELETE"],
        ),
        Route(
            "/{call_id}/participants/{participant_id}/{action}",
            participant_action,
            methods=["POST"],
        ),
        Route("/{call_id}/operations/{operation_id}", get_operation, methods=["GET"]),
        Route("/{call_id}/{action}", call_action, methods=["POST"]),
    ]


def _version_routes() -> list[BaseRoute]:
    calls = _call_routes()
    return [
        Route("/communications/calls", create_call, methods=["POST"]),
        Mount("/communications/calls", routes=calls),
        Route("/app/calls", create_call, methods=["POST"]),
        Mount("/app/calls", routes=calls),
        Route("/users/{user_id}/onlineMeetings", create_meeting, methods=["POST"]),
        Route(
            "/users/{user_id}/onlineMeetings/createOrGet",
            create_or_get_meeting,
            methods=["POST"],
        ),
        Route("/users/{user_id}/onlineMeetings", find_meetings, methods=["GET"]),
        Route(
            "/users/{user_id}/onlineMeetings/{meeting_id}", get_meeting, methods=["GET"]
        ),
    ]


routes: list[BaseRoute] = [
    Mount("/v1.0", routes=_version_routes()),
    Mount("/beta", routes=_version_routes()),
]
