"""Every API error in one JSON shape, with a stable code.

``{"error": {"code": "forbidden", "message": "...", "fields": {...}}}``: ``code``
is one of ``CODES`` (the action refusals of ``calls.access`` among them);
``fields`` is there for invalid input only. A 429 carries ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from callbot.calls.access import ActionRefusedError

logger = logging.getLogger(__name__)

# HTTP status of each refusal a service may raise.
REFUSAL_STATUS = {
    "forbidden": status.HTTP_403_FORBIDDEN,
    "call_not_found": status.HTTP_404_NOT_FOUND,
    "participant_not_found": status.HTTP_409_CONFLICT,
    "call_ended": status.HTTP_409_CONFLICT,
    "wrong_state": status.HTTP_409_CONFLICT,
    "not_offered": status.HTTP_409_CONFLICT,
    "unsupported": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "invalid": status.HTTP_400_BAD_REQUEST,
    "rate_limited": status.HTTP_429_TOO_MANY_REQUESTS,
}

_DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.ValidationError, "invalid"),
    (exceptions.ParseError, "malformed"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "forbidden"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
]

CODES = frozenset(
    {code for _, code in _DRF_CODES} | set(REFUSAL_STATUS) | {"server_error"}
)


class ApiError(exceptions.APIException):
    """An error a view raises with its own code (``not_found``, ``invalid``...)."""

    def __init__(self, code: str, message: str, status_code: int = 400) -> None:
        super().__init__(message, code)
        self.status_code = status_code
        self.error_code = code


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    if isinstance(detail, dict):
        return "Invalid input."
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's ``EXCEPTION_HANDLER``: the one shape for every error, a 500 too."""
    headers: dict[str, str] = {}
    if isinstance(exc, ActionRefusedError):
        code = exc.code
        response = Response(
            error_body(code, exc.message), status=REFUSAL_STATUS.get(code, 400)
        )
        if code == "rate_limited":
            wait = getattr(exc, "retry_after", 1.0)
            response["Retry-After"] = str(max(1, math.ceil(wait)))
        set_rollback()
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, ApiError):
        body = error_body(exc.error_code, str(exc.detail))
    elif isinstance(exc, exceptions.APIException):
        code = next((c for kind, c in _DRF_CODES if isinstance(exc, kind)), "")
        code = code or str(exc.default_code)
        if isinstance(exc, exceptions.ValidationError):
            fields = exc.detail if isinstance(exc.detail, dict) else None
            body = error_body(code, _message(exc.detail), fields)
        else:
            body = error_body(code, _message(exc.detail))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
    else:
        view = context.get("view")
        logger.error(
            "API view %s failed", type(view).__name__ if view else "?", exc_info=exc
        )
        set_rollback()
        return Response(
            error_body(
                "server_error",
                "Callbot could not answer because of a fault on the server; "
                "it has been logged.",
            ),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The project's ``handler404``: a path under ``/api/`` no route matches (a
    typo, an id that is not a number, another version) answers in the API's
    shape, not with the dashboard's HTML page. Runs after ``APPEND_SLASH`` had its
    chance, so ``/api/v1/calls`` still redirects to ``/api/v1/calls/``."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body("not_found", f"No API endpoint at {request.path[:200]}."),
            status=status.HTTP_404_NOT_FOUND,
        )
    return defaults.page_not_found(request, exception)
