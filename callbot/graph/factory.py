"""The process-wide ``GraphClient`` and notification authenticator, built from
Django settings on first use.

This is the one place in ``callbot.graph`` that reads settings, and it does so
lazily, inside the functions, so importing the package never needs Django
configured; it uses no models. The client is cached per process id: a Celery
prefork child must not reuse the connection pool (sockets) it inherited from its
parent.
"""

from __future__ import annotations

import os
import threading

from callbot.graph.client import GraphClient
from callbot.graph.notification_auth import (
    NotificationAuthConfig,
    NotificationAuthenticator,
)
from callbot.graph.tokens import MsalTokenProvider
from callbot.graph.user_signin import EntraSignIn

_lock = threading.Lock()
_cached: tuple[int, GraphClient] | None = None


def build_graph_client() -> GraphClient:
    """A new ``GraphClient`` with an msal token provider, configured from settings.

    Reads ``GRAPH_BASE_URL``, ``GRAPH_AUTHORITY``, ``GRAPH_CLIENT_ID``,
    ``GRAPH_CLIENT_SECRET``, ``GRAPH_SCOPE``, ``GRAPH_CA_BUNDLE``,
    ``GRAPH_TIMEOUT_SECONDS`` and ``GRAPH_RETRY_BUDGET_SECONDS``. No network traffic
    happens until the first request. Raises ``ValueError`` for a malformed base URL
    or authority.
    """
    from django.conf import settings

    ca_bundle = settings.GRAPH_CA_BUNDLE or None
    timeout = float(settings.GRAPH_TIMEOUT_SECONDS)
    tokens = MsalTokenProvider(
        client_id=settings.GRAPH_CLIENT_ID,
        client_secret=settings.GRAPH_CLIENT_SECRET,
        authority=settings.GRAPH_AUTHORITY,
        scope=settings.GRAPH_SCOPE,
        ca_bundle=ca_bundle,
        timeout=timeout,
    )
    return GraphClient(
        settings.GRAPH_BASE_URL,
        tokens,
        timeout=timeout,
        retry_budget_seconds=float(settings.GRAPH_RETRY_BUDGET_SECONDS),
        ca_bundle=ca_bundle,
    )


def get_graph_client() -> GraphClient:
    """The process-wide client (built on first call, rebuilt after a fork).

    Use ``get_graph_client().for_tenant(tenant_id)`` to act in a customer's tenant.
    """
    global _cached
    pid = os.getpid()
    cached = _cached
    if cached is not None and cached[0] == pid:
        return cached[1]
    with _lock:
        if _cached is None or _cached[0] != pid:
            # A client inherited across fork is dropped, not closed: closing would
            # shut sockets the parent still uses.
            _cached = (pid, build_graph_client())
        return _cached[1]


def reset_graph_client() -> None:
    """Close and forget the cached client (tests that change settings call this)."""
    global _cached
    with _lock:
        cached, _cached = _cached, None
    if cached is not None and cached[0] == os.getpid():
        cached[1].close()


_signin: EntraSignIn | None = None
_signin_lock = threading.Lock()


def get_user_signin() -> EntraSignIn:
    """The process-wide "Sign in with Microsoft" client: ``ENTRA_SIGNIN_CLIENT_ID``
    and ``_SECRET`` against ``GRAPH_AUTHORITY``, for ``GRAPH_TENANT_ID``'s people."""
    from django.conf import settings

    global _signin
    with _signin_lock:
        if _signin is None:
            _signin = EntraSignIn(
                client_id=settings.ENTRA_SIGNIN_CLIENT_ID,
                client_secret=settings.ENTRA_SIGNIN_CLIENT_SECRET,
                authority=settings.GRAPH_AUTHORITY,
                tenant_id=settings.GRAPH_TENANT_ID,
                ca_bundle=settings.GRAPH_CA_BUNDLE or None,
                timeout=float(settings.GRAPH_TIMEOUT_SECONDS),
            )
        return _signin


def reset_user_signin() -> None:
    global _signin
    with _signin_lock:
        _signin = None


_authenticator: NotificationAuthenticator | None = None
_authenticator_lock = threading.Lock()


def get_notification_authenticator() -> NotificationAuthenticator:
    """The process-wide authenticator; its JWKS cache outlives requests."""
    global _authenticator
    with _authenticator_lock:
        if _authenticator is None:
            _authenticator = NotificationAuthenticator(notification_auth_config())
        return _authenticator


def notification_auth_config() -> NotificationAuthConfig:
    """The webhook's token checks from settings: ``GRAPH_NOTIFICATION_OPENID_URL``,
    ``GRAPH_CLIENT_ID`` (the audience), ``GRAPH_NOTIFICATION_ISSUERS``,
    ``GRAPH_NOTIFICATION_LEEWAY_SECONDS`` and ``GRAPH_CA_BUNDLE``."""
    from django.conf import settings

    return NotificationAuthConfig(
        openid_url=settings.GRAPH_NOTIFICATION_OPENID_URL,
        audience=settings.GRAPH_CLIENT_ID,
        issuers=tuple(settings.GRAPH_NOTIFICATION_ISSUERS),
        leeway_seconds=settings.GRAPH_NOTIFICATION_LEEWAY_SECONDS,
        ca_bundle=settings.GRAPH_CA_BUNDLE or None,
    )


def reset_notification_authenticator() -> None:
    """Forget the cached authenticator (settings changed, e.g. in tests)."""
    global _authenticator
    with _authenticator_lock:
        _authenticator = None
