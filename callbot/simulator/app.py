"""The ASGI app: ``create_app(config)`` and a lazily built module-level ``application``.

``application`` reads ``EMULATOR_*`` on first use (not at import, so importing this
module writes no keys), for ``daphne callbot.simulator.app:application`` and friends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callbot.simulator import control, graph_api, identity_api
from callbot.simulator.config import EmulatorConfig, config_from_env
from callbot.simulator.emulator import Emulator, emulator_of
from callbot.simulator.errors import error_body

_CODES = {404: "NotFound", 405: "MethodNotAllowed", 400: "BadRequest"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Graph's error shape for routing errors too (an unknown path is a 404 in Graph)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = exc.detail if isinstance(exc, HTTPException) else "Internal error."
    client_request_id = request.headers.get("client-request-id", "")
    return JSONResponse(
        error_body(
            _CODES.get(status, "UnknownError"),
            str(message),
            str(uuid.uuid4()),
            client_request_id,
        ),
        status_code=status,
    )


async def recording(request: Request) -> Response:
    """``GET {recordingLocation}`` with ``Authorization: Bearer {recordingAccessToken}``."""
    emulator = emulator_of(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    audio = None
    if scheme.lower() == "bearer" and token:
        audio = emulator.media.recording(
            request.path_params["recording_id"], token.strip()
        )
    if audio is None:
        return JSONResponse(
            error_body(
                "InvalidAuthenticationToken",
                "Recording not found or access token invalid.",
                str(uuid.uuid4()),
                "",
            ),
            status_code=401,
        )
    return Response(audio, media_type="application/octet-stream")


async def index(request: Request) -> Response:
    emulator = emulator_of(request)
    return JSONResponse(
        {
            "emulator": "Microsoft Teams / Graph calls emulator",
            "tenantId": emulator.config.bot.tenant_id,
            "clientId": emulator.config.bot.client_id,
            "graph": "/v1.0",
            "authority": f"/{emulator.config.bot.tenant_id}",
            "notificationMetadata": "/v1/.well-known/OpenIdConfiguration",
            "control": "/_emulator/",
        }
    )


def create_app(config: EmulatorConfig | None = None) -> Starlette:
    """Build the emulator app. ``config`` None reads ``EMULATOR_*`` variables."""
    emulator = Emulator(config or config_from_env())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await emulator.aclose()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/recordings/{recording_id}", recording, methods=["GET"]),
            *control.routes,
            *graph_api.routes,
            *identity_api.routes,
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.emulator = emulator
    return app


class _LazyApplication:
    """Builds the app from the environment on the first ASGI call."""

    def __init__(self) -> None:
        self._app: Starlette | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


application = _LazyApplication()
