"""Who and what a log line is about: the call, Graph's client-request-id and the
user, carried in context variables and stamped on every record by a filter.

Where work about a call starts, it binds them once (``bind``): a page about a
call (``LogContextMiddleware``), one attempt at an action (``bind_action``). Every
line logged after that in the same request, task or thread carries them, whoever
logs it, without each call site passing ``extra=``. A line that passes its own
``extra={"call_id": ...}`` keeps it. Each request and each task starts empty.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

FIELDS = ("call_id", "client_request_id", "user")
_vars: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"callbot_log_{name}", default=None) for name in FIELDS
}
_request: ContextVar[HttpRequest | None] = ContextVar(
    "callbot_log_request", default=None
)


def bind(**values: object) -> None:
    """Set context fields (``call_id``, ``client_request_id``, ``user``); None
    leaves a field as it is."""
    for name, value in values.items():
        if value is not None and value != "":
            _vars[name].set(str(value))


def clear() -> None:
    for var in _vars.values():
        var.set(None)
    _request.set(None)


def current() -> dict[str, str | None]:
    return {name: var.get() for name, var in _vars.items()}


def bind_action(action: Any) -> None:
    """The call, client-request-id and requester of an Action being performed."""
    requester = action.requested_by
    bind(
        call_id=action.call_id,
        client_request_id=action.client_request_id,
        user=requester.get_username() if requester is not None else "bot",
    )


class ContextFilter(logging.Filter):
    """Puts the context's fields on every record (attached to the handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = _request.get()
        for name, var in _vars.items():
            if getattr(record, name, None) is not None:
                continue
            value = var.get()
            if value is None and request is not None:
                value = _from_request(request, name)
            setattr(record, name, value)
        return True


class RefusalFilter(logging.Filter):
    """Drops the traceback of a request refused for want of permission (attached
    to ``django.request``): Django logs every 403 with its exception, and a role
    opening a page it may not see is ordinary, not a fault. The line stays (one
    WARNING with the path); a server error keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True


class ReadableFormatter(logging.Formatter):
    """The embedded default's lines: plain text, the context in brackets when set."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={value}"
            for name in FIELDS
            if (value := getattr(record, name, None)) is not None
        )
        if not context:
            return line
        head, sep, rest = line.partition("\n")
        return f"{head} [{context}]{sep}{rest}"


class LogContextMiddleware:
    """Each request starts with an empty context and is remembered, so a line it
    logs carries its user (once authentication has looked it up) and the
    ``call_id`` URL argument of a call's page. Nothing is looked up here: the
    filter reads both when a line is logged, so a request that logs nothing pays
    nothing, and the webhook's path gains no thread hop (sync and async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        clear()
        _request.set(request)
        try:
            return self.get_response(request)
        finally:
            clear()  # hold no request (nor its lazy attributes) past its response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        clear()
        _request.set(request)
        try:
            response: Awaitable[HttpResponse] = self.get_response(request)
            return await response
        finally:
            clear()


def _from_request(request: HttpRequest, name: str) -> str | None:
    if name == "call_id":
        match = request.resolver_match
        value = match.kwargs.get("call_id") if match is not None else None
        return None if value is None else str(value)
    if name == "user":
        user = request.__dict__.get("user")
        # Only a user authentication already loaded: never a query while logging.
        if (
            isinstance(user, SimpleLazyObject)
            and object.__getattribute__(user, "_wrapped") is empty
        ):
            return None
        if user is not None and user.is_authenticated:
            return str(user.get_username())
    return None
