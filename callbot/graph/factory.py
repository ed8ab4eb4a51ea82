"""The process-wide ``GraphClient``, built from Django settings on first use.

This is the one place in ``callbot.graph`` that reads settings, and it does so
lazily, inside the function, so importing the package never needs Django configured.
The client is cached per process id: a Celery prefork child must not reuse the
connection pool (sockets) it inherited from its parent.
"""

from __future__ import annotations

import os
import threading

from callbot.graph.client import GraphClient
from callbot.graph.tokens import MsalTokenProvider

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
