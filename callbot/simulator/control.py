"""The emulator-only control API under ``/_emulator/`` (JSON, no auth, localhost only).

It plays the humans and the operator of the emulator: ring the bot, create meetings and
invite the bot, join/leave/mute/share, press keys, hang up from the far end, escalate,
switch faults, start scenarios, read stats and events, reset. Thin: each route parses,
calls one engine/calling/media method and answers; notifications it causes are sent
after the response, like Graph's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from callbot.simulator.emulator import Emulator, emulator_of
from callbot.simulator.errors import GraphError, bad_request, error_body, not_found
from callbot.simulator.faults import FaultSpecError, parse_faults
from callbot.simulator.graph_api import body_of
from callbot.simulator.model import Call, Conversation, identity_set
from callbot.simulator.scenarios import DEFAULT_SCENARIO
from callbot.simulator.validate import TONES

Handler = Callable[[Request, Emulator], Awaitable[Response]]
_LOCAL = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
_KEYS = {str(i): f"tone{i}" for i in range(10)} | {
    "*": "star",
    "#": "pound",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
}


def control(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Localhost check, request scope, error shape, deferred release."""

    async def endpoint(request: Request) -> Response:
        emulator = emulator_of(request)
        held = None
        try:
            if request.client is not None and request.client.host not in _LOCAL:
                raise GraphError(
                    403, "Forbidden", "The control API only answers on localhost."
                )
            with emulator.engine.request_scope() as held:
                response = await handler(request, emulator)
        except GraphError as exc:
            response = JSONResponse(
                error_body(exc.code, exc.message, str(uuid.uuid4()), ""),
                status_code=exc.status,
            )
        if held:
            response.background = BackgroundTask(
                emulator.engine.release_after_response, held
            )
        return response

    return endpoint


def parse_identity(data: Any, tenant_id: str, rng_id: str) -> dict[str, Any]:
    """A person from ``{"user": {...}}``, ``{"phone": "+1..."}`` or ``{"guest": {...}}``.

    Missing user ids are generated; a bare string for ``phone`` is its number.
    """
    if not isinstance(data, dict):
        raise bad_request(
            "Give the person as {'user': {...}}, {'phone': '+1...'} or {'guest': {...}}."
        )
    if "identity" in data and isinstance(data["identity"], dict):
        data = data["identity"]
    if "phone" in data:
        phone = data["phone"]
        number = phone.get("id") if isinstance(phone, dict) else phone
        if not isinstance(number, str) or not number.startswith("+"):
            raise bad_request("'phone' must be an E.164 number such as +14255550123.")
        return identity_set("phone", number, None, None)
    for kind in ("user", "guest"):
        if kind in data:
            member = data[kind] if isinstance(data[kind], dict) else {}
            name = str(
                member.get("displayName")
                or ("Guest" if kind == "guest" else "Teams user")
            )
            ident = str(member.get("id") or rng_id)
            return identity_set(
                kind, ident, name, tenant_id if kind == "user" else None
            )
    raise bad_request(
        "Give the person as {'user': {...}}, {'phone': '+1...'} or {'guest': {...}}."
    )


def _person(emulator: Emulator, data: Any) -> dict[str, Any]:
    return parse_identity(
        data,
        emulator.config.bot.tenant_id,
        str(uuid.UUID(int=emulator.rng.getrandbits(128), version=4)),
    )


def call_summary(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "state": call.state,
        "direction": call.direction,
        "kind": call.kind,
        "callbackUri": call.callback_uri,
        "callChainId": call.conversation.chain_id,
        "myParticipantId": call.my_participant_id,
        "meetingId": call.conversation.meeting_id,
        "participants": len(call.conversation.participants),
        "deltaRoster": call.delta_roster,
        "toneSubscribed": call.tone_subscribed,
        "resultInfo": call.result_info,
        "source": call.source,
    }


def _call(emulator: Emulator, request: Request) -> Call:
    return emulator.engine.live_call(request.path_params["call_id"])


def _conversation(emulator: Emulator, request: Request) -> Conversation:
    if "meeting_id" in request.path_params:
        return emulator.calling.conversation_of(
            meeting_id=request.path_params["meeting_id"]
        )
    return _call(emulator, request).conversation


# --- calls ---------------------------------------------------------------------------
@control
async def incoming_call(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    caller = _person(emulator, body.get("from") or {"user": {}})
    callback = body.get("callbackUri")
    if callback is not None and not isinstance(callback, str):
        raise bad_request("'callbackUri' must be a string.")
    call = emulator.calling.ring_bot(caller, callback)
    return JSONResponse(
        {"callId": call.id, "call": call_summary(call)}, status_code=201
    )


@control
async def list_calls(request: Request, emulator: Emulator) -> Response:
    state = request.query_params.get("state")
    calls = list(emulator.engine.calls.values())
    if request.query_params.get("ended") in ("1", "true"):
        calls += list(emulator.engine.ended.values())
    return JSONResponse(
        {"value": [call_summary(c) for c in calls if state is None or c.state == state]}
    )


@control
async def get_call(request: Request, emulator: Emulator) -> Response:
    call = emulator.engine.any_call(request.path_params["call_id"])
    if call is None:
        raise not_found(f"Call '{request.path_params['call_id']}'")
    data = call_summary(call)
    data["participantsList"] = [
        p.to_json() for p in call.conversation.participants.values()
    ]
    return JSONResponse(data)


@control
async def hang_up(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    result = body.get("resultInfo")
    if result is not None and not isinstance(result, dict):
        raise bad_request(
            "'resultInfo' must be an object with code, subcode and message."
        )
    emulator.calling.hang_up_remote(_call(emulator, request), result)
    return JSONResponse({"ok": True})


@control
async def press(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    tones: list[str] = []
    if isinstance(body.get("keys"), str):
        for key in body["keys"]:
            if key not in _KEYS:
                raise bad_request(f"Unknown key {key!r}; use 0-9, *, # or A-D.")
            tones.append(_KEYS[key])
    raw = body.get("tones", [])
    if not isinstance(raw, list) or any(
        not isinstance(t, str) or t.lower() not in TONES for t in raw
    ):
        raise bad_request(
            "'tones' must be an array of tone values (tone0..tone9, star, pound...)."
        )
    tones += [str(t) for t in raw]
    if not tones:
        raise bad_request("Give 'keys' (\"0#\") or 'tones' ([\"tone0\"]).")
    sent = emulator.media.press(_call(emulator, request), tones)
    return JSONResponse({"pressed": len(tones), "notified": sent})


@control
async def escalate(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    newcomer = _person(emulator, body.get("add") or body or {"user": {}})
    participant_id = emulator.calling.escalate(_call(emulator, request), newcomer)
    return JSONResponse({"participantId": participant_id})


# --- people in a call or meeting -----------------------------------------------------------
@control
async def join(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    conversation = _conversation(emulator, request)
    participant_id = emulator.calling.join(
        conversation, _person(emulator, body), bool(body.get("muted"))
    )
    return JSONResponse({"participantId": participant_id}, status_code=201)


@control
async def leave(request: Request, emulator: Emulator) -> Response:
    emulator.calling.leave(
        _conversation(emulator, request), request.path_params["participant_id"]
    )
    return JSONResponse({"ok": True})


@control
async def update_participant(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    muted, sharing = body.get("muted"), body.get("sharing")
    for name, value in (("muted", muted), ("sharing", sharing)):
        if value is not None and not isinstance(value, bool):
            raise bad_request(f"'{name}' must be a boolean.")
    emulator.calling.set_state(
        _conversation(emulator, request),
        request.path_params["participant_id"],
        muted,
        sharing,
    )
    return JSONResponse({"ok": True})


# --- meetings ----------------------------------------------------------------------------
def meeting_summary(emulator: Emulator, meeting_id: str) -> dict[str, Any]:
    meeting = emulator.meetings.by_id[meeting_id]
    conversation = meeting.conversation
    return {
        "id": meeting.id,
        "subject": meeting.subject,
        "joinWebUrl": meeting.join_web_url,
        "chatInfo": meeting.chat_info(),
        "organizer": meeting.organizer_identity(),
        "meetingInfo": meeting.organizer_meeting_info(),
        "joinMeetingId": meeting.join_meeting_id,
        "passcode": meeting.passcode,
        "participants": len(conversation.participants) if conversation else 0,
        "botCalls": list(conversation.call_ids) if conversation else [],
    }


@control
async def create_meeting(request: Request, emulator: Emulator) -> Response:
    body = await body_of(request)
    organizer = _person(
        emulator, {"user": body.get("organizer") or {"displayName": "Organizer"}}
    )
    user = organizer["user"]
    meeting = emulator.meetings.create(
        user["id"],
        user.get("displayName", "Organizer"),
        subject=str(body.get("subject") or "Meeting"),
        passcode_required=bool(body.get("passcodeRequired")),
    )
    emulator.events.add(
        "human", f"meeting '{meeting.subject}' created", meetingId=meeting.id
    )
    return JSONResponse(meeting_summary(emulator, meeting.id), status_code=201)


@control
async def list_meetings(request: Request, emulator: Emulator) -> Response:
    return JSONResponse(
        {"value": [meeting_summary(emulator, m) for m in emulator.meetings.by_id]}
    )


@control
async def invite_bot(request: Request, emulator: Emulator) -> Response:
    meeting = emulator.meetings.by_id.get(request.path_params["meeting_id"])
    if meeting is None:
        raise not_found(f"Meeting '{request.path_params['meeting_id']}'")
    call = emulator.calling.invite_bot(meeting)
    return JSONResponse(
        {"callId": call.id, "call": call_summary(call)}, status_code=201
    )


# --- operating the emulator ------------------------------------------------------------------
@control
async def faults(request: Request, emulator: Emulator) -> Response:
    if request.method == "POST":
        try:
            emulator.faults.set(parse_faults(await body_of(request)))
        except FaultSpecError as exc:
            raise bad_request(str(exc)) from exc
    elif request.method == "DELETE":
        names = request.query_params.get("names")
        emulator.faults.clear(names.split(",") if names else None)
    return JSONResponse(
        {"active": emulator.faults.as_json(), "applied": dict(emulator.faults.applied)}
    )


@control
async def stats(request: Request, emulator: Emulator) -> Response:
    return JSONResponse(emulator.stats())


@control
async def events(request: Request, emulator: Emulator) -> Response:
    try:
        after = int(request.query_params.get("after", "0"))
    except ValueError as exc:
        raise bad_request("'after' must be an integer.") from exc
    return JSONResponse(
        {"value": emulator.events.after(after), "last": emulator.events.last}
    )


@control
async def graph_requests(request: Request, emulator: Emulator) -> Response:
    """``GET /_emulator/requests``: the last Graph requests, oldest first."""
    return JSONResponse({"value": list(emulator.graph_requests)})


@control
async def reset(request: Request, emulator: Emulator) -> Response:
    emulator.reset()
    return JSONResponse({"ok": True})


_SETTINGS = {
    "answerTimeout": "answer_timeout",
    "keepaliveTimeout": "keepalive_timeout",
    "setupDelay": "setup_delay",
    "calleeAnswerDelay": "callee_answer_delay",
    "mediaSeconds": "media_seconds",
    "transferDelay": "transfer_delay",
    "tokenLifetime": "token_lifetime",
}


@control
async def settings(request: Request, emulator: Emulator) -> Response:
    """``GET``/``PATCH /_emulator/config``: timers, bot webhook, bot permissions."""
    config = emulator.config
    if request.method == "PATCH":
        body = await body_of(request)
        for key, attr in _SETTINGS.items():
            if key in body:
                value = body[key]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or value < 0
                ):
                    raise bad_request(
                        f"'{key}' must be a non-negative number of seconds."
                    )
                setattr(config, attr, float(value))
        if "botWebhook" in body:
            if not isinstance(body["botWebhook"], str):
                raise bad_request("'botWebhook' must be a URL.")
            config.bot.webhook = body["botWebhook"]
        if "permissions" in body:
            perms = body["permissions"]
            if not isinstance(perms, list) or any(
                not isinstance(p, str) for p in perms
            ):
                raise bad_request("'permissions' must be an array of permission names.")
            config.bot.permissions = tuple(perms)
        if "revokePermissions" in body:
            # The switch to take one role away (the token's ``roles`` lose it from
            # the next token on), leaving the rest as they are.
            revoked = body["revokePermissions"]
            if not isinstance(revoked, list) or any(
                not isinstance(p, str) for p in revoked
            ):
                raise bad_request(
                    "'revokePermissions' must be an array of permission names."
                )
            config.bot.permissions = tuple(
                p for p in config.bot.permissions if p not in revoked
            )
        if "speed" in body:
            try:
                emulator.clock.set_speed(float(body["speed"]))
            except (TypeError, ValueError) as exc:
                raise bad_request("'speed' must be a positive number.") from exc
    data: dict[str, Any] = {
        key: getattr(config, attr) for key, attr in _SETTINGS.items()
    }
    data.update(
        {
            "botWebhook": config.bot.webhook,
            "permissions": list(config.bot.permissions),
            "speed": emulator.clock.speed,
            "tenantId": config.bot.tenant_id,
            "clientId": config.bot.client_id,
        }
    )
    return JSONResponse(data)


@control
async def scenarios(request: Request, emulator: Emulator) -> Response:
    if request.method == "POST":
        body = await body_of(request)
        try:
            run = emulator.scenarios.start(
                str(body.get("name") or DEFAULT_SCENARIO),
                int(body.get("seed", emulator.config.seed)),
                float(body.get("duration", 60)),
                float(body.get("speed", 1.0)),
            )
        except (TypeError, ValueError) as exc:
            raise bad_request(str(exc)) from exc
        return JSONResponse(run.as_json(), status_code=201)
    return JSONResponse({"value": emulator.scenarios.summary()})


@control
async def stop_scenario(request: Request, emulator: Emulator) -> Response:
    try:
        run = emulator.scenarios.stop(int(request.path_params["run_id"]))
    except ValueError as exc:
        raise bad_request("The run id must be an integer.") from exc
    if run is None:
        raise not_found(f"Scenario run '{request.path_params['run_id']}'")
    return JSONResponse(run.as_json())


_P = "/_emulator"
routes: list[BaseRoute] = [
    Route(f"{_P}/calls/incoming", incoming_call, methods=["POST"]),
    Route(f"{_P}/calls", list_calls, methods=["GET"]),
    Route(f"{_P}/calls/{{call_id}}", get_call, methods=["GET"]),
    Route(f"{_P}/calls/{{call_id}}/hangup", hang_up, methods=["POST"]),
    Route(f"{_P}/calls/{{call_id}}/tones", press, methods=["POST"]),
    Route(f"{_P}/calls/{{call_id}}/escalate", escalate, methods=["POST"]),
    Route(f"{_P}/calls/{{call_id}}/participants", join, methods=["POST"]),
    Route(
        f"{_P}/calls/{{call_id}}/participants/{{participant_id}}",
        leave,
        methods=["DELETE"],
    ),
    Route(
        f"{_P}/calls/{{call_id}}/participants/{{participant_id}}",
        update_participant,
        methods=["PATCH"],
    ),
    Route(f"{_P}/meetings", create_meeting, methods=["POST"]),
    Route(f"{_P}/meetings", list_meetings, methods=["GET"]),
    Route(f"{_P}/meetings/{{meeting_id}}/invite-bot", invite_bot, methods=["POST"]),
    Route(f"{_P}/meetings/{{meeting_id}}/participants", join, methods=["POST"]),
    Route(
        f"{_P}/meetings/{{meeting_id}}/participants/{{participant_id}}",
        leave,
        methods=["DELETE"],
    ),
    Route(
        f"{_P}/meetings/{{meeting_id}}/participants/{{participant_id}}",
        update_participant,
        methods=["PATCH"],
    ),
    Route(f"{_P}/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route(f"{_P}/stats", stats, methods=["GET"]),
    Route(f"{_P}/events", events, methods=["GET"]),
    Route(f"{_P}/requests", graph_requests, methods=["GET"]),
    Route(f"{_P}/reset", reset, methods=["POST"]),
    Route(f"{_P}/config", settings, methods=["GET", "PATCH"]),
    Route(f"{_P}/scenarios", scenarios, methods=["GET", "POST"]),
    Route(f"{_P}/scenarios/{{run_id}}", stop_scenario, methods=["DELETE"]),
]
