"""Graph's synchronous error shape (contract §11.1) as an exception the routes render.

Engine code raises ``GraphError`` wherever Graph would refuse a request; the route
wrapper in ``graph_api.py`` turns it into ``{"error": {"code", "message", "innerError"}}``
with the right status and headers. Codes are Graph's general ones; the calls-specific
code strings are undocumented (contract §11.1), so these are illustrative.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """A refused Graph request: HTTP status, Graph error ``code`` and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> GraphError:
    """400: malformed body or invalid combination; the message names the problem."""
    return GraphError(400, "BadRequest", message)


def forbidden(permission: str) -> GraphError:
    """403: the app's token lacks ``permission`` (contract §1.3)."""
    return GraphError(
        403,
        "Forbidden",
        f"Application is not authorized to perform this action: requires {permission}.",
    )


def unknown_segment(segment: str) -> GraphError:
    """400: a path segment Graph's OData routing does not know (no such action)."""
    return GraphError(
        400, "BadRequest", f"Resource not found for the segment '{segment}'."
    )


def not_found(what: str) -> GraphError:
    """404: unknown resource, notably any call after it terminated (contract §6.3)."""
    return GraphError(404, "NotFound", f"{what} was not found.")


def conflict(message: str) -> GraphError:
    """409: the action does not fit the call's current state (contract §11.1)."""
    return GraphError(409, "Conflict", message)


def error_body(
    code: str, message: str, request_id: str, client_request_id: str
) -> dict[str, Any]:
    """The JSON body of a Graph error, with the ``innerError`` correlation block."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
