"""The ``GraphError`` tree: what went wrong talking to Graph, and whether a retry helps.

Every failure the Graph edge reports is a ``GraphError`` carrying the HTTP status (0 for
a transport failure), Graph's error ``code`` and ``message`` (contract §11.1), the
``request-id``/``client-request-id`` for support, and ``Retry-After`` when the service
sent one. ``retryable`` says whether sending the same request again can succeed, the
way healthchecks' ``TransportError(permanent=...)`` does::

    GraphError
    ├── GraphThrottledError         429                      retryable
    ├── GraphTransientError         5xx, 408, transport (0)  retryable
    └── GraphPermanentError         other 4xx                not retryable
        ├── GraphBadRequestError    400
        ├── GraphAuthError          401, token acquisition   (retryable only if the
        │                                                     token endpoint was down)
        ├── GraphForbiddenError     403
        ├── GraphNotFoundError      404
        └── GraphConflictError      409

``str(err)`` is one line (status, code, message, request id) and never holds a token,
a header or a body. Nothing here imports httpx, msal or Django.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, ClassVar

# A message from the service is for developers; keep the one-liner a line.
_MAX_MESSAGE_CHARS = 300
_WHITESPACE = re.compile(r"\s+")


class GraphError(Exception):
    """A request to Graph failed. Branch on the subclass, ``status`` and ``code``.

    ``message`` is the service's developer text: log it, never branch on it
    (contract §11.1).
    """

    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        request_id: str | None = None,
        client_request_id: str | None = None,
        retry_after: float | None = None,
        inner_codes: tuple[str, ...] = (),
        retryable: bool | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = _one_line(message)
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after = retry_after
        # More specific codes from nested ``innerError`` objects, outermost first.
        self.inner_codes = inner_codes
        self._retryable = retryable
        super().__init__(str(self))

    @property
    def retryable(self) -> bool:
        """True when sending the same request again (after ``retry_after``) may succeed."""
        if self._retryable is not None:
            return self._retryable
        return self.default_retryable

    def __str__(self) -> str:
        head = f"Graph {self.status}" if self.status else "Graph transport error"
        if self.code:
            head = f"{head} {self.code}"
        text = f"{head}: {self.message}" if self.message else head
        if self.request_id:
            text = f"{text} (request-id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r}, "
            f"client_request_id={self.client_request_id!r}, "
            f"retry_after={self.retry_after!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles exceptions raised in tasks; keep every field across the trip.
        return (
            _rebuild,
            (
                type(self),
                self.status,
                self.code,
                self.message,
                {
                    "request_id": self.request_id,
                    "client_request_id": self.client_request_id,
                    "retry_after": self.retry_after,
                    "inner_codes": self.inner_codes,
                    "retryable": self._retryable,
                },
            ),
        )


def _rebuild(
    cls: type[GraphError], status: int, code: str, message: str, kwargs: dict[str, Any]
) -> GraphError:
    return cls(status, code, message, **kwargs)


class GraphThrottledError(GraphError):
    """429 Too Many Requests: wait ``retry_after`` seconds, then retry."""

    default_retryable = True


class GraphTransientError(GraphError):
    """5xx, 408, or the request never got an answer (``status == 0``): retry with backoff."""

    default_retryable = True


class GraphPermanentError(GraphError):
    """A 4xx: the same request will fail the same way."""


class GraphBadRequestError(GraphPermanentError):
    """400: malformed body or invalid combination (e.g. playPrompt on app-hosted media)."""


class GraphAuthError(GraphPermanentError):
    """401 from Graph, or no token could be acquired (bad secret, unknown tenant).

    ``retryable`` is true only when the token endpoint could not be reached.
    """


class GraphForbiddenError(GraphPermanentError):
    """403: missing permission, consent, application access policy or tenant config."""


class GraphNotFoundError(GraphPermanentError):
    """404: unknown call, participant or meeting; notably any call after it ended."""


class GraphConflictError(GraphPermanentError):
    """409: the resource is in a state that conflicts with the request."""


_BY_STATUS: dict[int, type[GraphError]] = {
    400: GraphBadRequestError,
    401: GraphAuthError,
    403: GraphForbiddenError,
    404: GraphNotFoundError,
    408: GraphTransientError,
    409: GraphConflictError,
    429: GraphThrottledError,
}


def error_class_for_status(status: int) -> type[GraphError]:
    """The ``GraphError`` subclass the contract's status table (§11.1) maps ``status`` to."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 500 <= status < 600:
        return GraphTransientError
    if 400 <= status < 500:
        return GraphPermanentError
    return GraphError


def error_from_response(
    status: int,
    content: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> GraphError:
    """Build the typed error for a non-2xx response.

    Reads the §11.1 body ``{"error": {"code", "message", "innerError": {...}}}`` with
    keys matched case-insensitively (the docs spell it ``innerError`` and
    ``innererror``). A body that is not that shape (HTML from a gateway, empty, plain
    text) yields an empty ``code`` and the HTTP reason phrase as the message.
    ``headers`` must look up case-insensitively (httpx's do); ``now`` is the epoch time
    used for an HTTP-date ``Retry-After``.
    """
    code, message, inner, inner_codes = _parse_error_body(content)
    if not message:
        message = _reason(status)
    request_id = _first(headers.get("request-id"), _ci_str(inner, "request-id"))
    client_request_id = _first(
        headers.get("client-request-id"), _ci_str(inner, "client-request-id")
    )
    cls = error_class_for_status(status)
    return cls(
        status,
        code,
        message,
        request_id=request_id,
        client_request_id=client_request_id,
        retry_after=parse_retry_after(headers.get("retry-after"), now=now),
        inner_codes=inner_codes,
    )


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when absent or unreadable.

    Graph sends delta-seconds, sometimes fractional (``2.128``, contract §11.1); HTTP
    also allows an HTTP-date, which is converted relative to ``now`` (epoch seconds,
    required for that form). Negative values become 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN/inf
            return None
        return max(0.0, seconds)
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT; a naive result means "-0000"
        return None
    return max(0.0, when.timestamp() - now)


def _parse_error_body(
    content: bytes,
) -> tuple[str, str, Mapping[str, Any], tuple[str, ...]]:
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return "", "", {}, ()
    if not isinstance(data, dict):
        return "", "", {}, ()
    error = _ci_get(data, "error")
    if not isinstance(error, dict):
        return "", "", {}, ()
    code = _ci_str(error, "code") or ""
    message = _ci_str(error, "message") or ""
    inner_codes: list[str] = []
    first_inner: Mapping[str, Any] = {}
    node: Any = _ci_get(error, "innererror")
    depth = 0
    while isinstance(node, dict) and depth < 10:  # bounded: the body is untrusted
        if not first_inner:
            first_inner = node
        inner_code = _ci_str(node, "code")
        if inner_code:
            inner_codes.append(inner_code)
        node = _ci_get(node, "innererror")
        depth += 1
    return code, message, first_inner, tuple(inner_codes)


def _ci_get(data: Mapping[str, Any], key: str) -> Any:
    if key in data:
        return data[key]
    lowered = key.lower()
    for k, v in data.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _ci_str(data: Mapping[str, Any], key: str) -> str | None:
    value = _ci_get(data, key)
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _one_line(text: str) -> str:
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 1] + "…"
    return text
