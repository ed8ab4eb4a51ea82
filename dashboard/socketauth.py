"""Who a live socket belongs to: its session and user, in one step at connect.

Channels' ``AuthMiddlewareStack`` (cookie, session and auth middleware) keeps,
for as long as each socket stays open, every layer's copy of the scope, a session
wrapper, lazy session and user objects, the decoded session, and the context
variables asgiref copies back from the user's read into the socket's task (see
``threadhop``). For a socket that lives for hours that is several KiB of each
subscriber's memory (bench/README.md). ``SessionUserMiddleware`` does the same
reading (Django's session cookie, then ``channels.auth.get_user``, which also
flushes a session whose password hash no longer matches) with one trip to the
sync thread, and hands the consumer one scope with:

* ``session_key``: the session's key (None when there was none, or it was
  flushed): the consumer needs nothing else of the session, which each message
  reads afresh (``session_user``);
* ``user``: the user, or ``AnonymousUser``; the consumer takes it out of the scope
  at connect and keeps its own (re-read at every message).

Websockets only: nothing here saves a session or sets a cookie, which channels'
session middleware does for HTTP responses only.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import parse_cookie

from channels.auth import get_user

from dashboard.permissions import UserLike
from dashboard.threadhop import in_thread


def session_store(session_key: str | None) -> Any:
    """A session store for the key, read from its backend on first use."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def session_user(session_key: str | None) -> UserLike | None:
    """The session's user, read afresh from the session backend; None once
    signed out. Sync: ``channels.auth.get_user`` without its own trip to the
    database thread."""
    if not session_key:
        return None
    user = get_user.func({"session": session_store(session_key)})
    return user if user.is_authenticated else None


def _connecting(session_key: str | None) -> tuple[Any, str | None]:
    """The user of the session (``AnonymousUser`` when none) and the session's key
    once read (None when it was missing or flushed)."""
    session = session_store(session_key)
    user = get_user.func({"session": session})
    return user, session.session_key


def session_key_of(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return parse_cookie(value.decode("latin1")).get(
                settings.SESSION_COOKIE_NAME
            )
    return None


class SessionUserMiddleware:
    """The socket's ``session`` and ``user`` in its scope (see the module)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # No local of this frame, which lasts as long as the socket, holds the
        # user: the consumer takes it out of its scope and replaces it.
        return await self.inner(await _socket_scope(scope), receive, send)


async def _socket_scope(scope: dict[str, Any]) -> dict[str, Any]:
    user, key = await in_thread(_connecting, session_key_of(scope))
    return dict(scope, session_key=key, user=user)
