"""App-only access tokens for Graph (contract §1.2): the client-credentials flow via msal.

``MsalTokenProvider`` keeps one msal ``ConfidentialClientApplication`` per tenant
authority. msal's own token cache holds each token until five minutes before expiry;
in front of it sits a small per-tenant guard so the hot path (every Graph request)
is a dict read, not msal's cache search under its lock.

The authority comes from settings (``GRAPH_AUTHORITY``), never a constant, so tests and
the embedded default point msal at the emulator. msal only accepts HTTPS authorities;
for a host that is not one of Microsoft's it would also run "instance discovery"
against login.microsoftonline.com, so such hosts get ``validate_authority=False`` and
``instance_discovery=False`` (read from msal 1.39's ``authority.py``). With a CA bundle
msal talks through a ``requests.Session`` that verifies against that bundle only, with
``trust_env`` off: otherwise ``REQUESTS_CA_BUNDLE`` silently overrides ``verify``.

Nothing here imports Django; only ``callbot.graph`` imports msal.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS
from requests.adapters import HTTPAdapter

from callbot.graph.errors import GraphAuthError

logger = logging.getLogger(__name__)

# msal treats a cached token as expired five minutes before ``expires_on``; our guard
# gives it back a little earlier so the two never disagree about a token's age.
_EXPIRY_MARGIN_SECONDS = 330.0
_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# msal error codes that mean "the identity platform is having a moment", not "you
# are misconfigured".
_RETRYABLE_MSAL_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


@runtime_checkable
class TokenProvider(Protocol):
    """Hands out a bearer token for Graph."""

    def get_token(self, tenant_id: str | None = None) -> str:
        """A valid access token for ``tenant_id`` (None: the configured tenant).

        Raises ``GraphAuthError`` when no token can be had.
        """
        ...


@runtime_checkable
class InvalidatingTokenProvider(TokenProvider, Protocol):
    """A provider that can drop a token Graph rejected (401), so the next is fresh."""

    def invalidate(self, token: str, tenant_id: str | None = None) -> None:
        """Forget ``token`` if it is still the cached one for ``tenant_id``."""
        ...


class StaticTokenProvider:
    """Always the same token: for tests and for tools holding a token already.

    ``calls`` counts ``get_token`` calls and ``invalidated`` records invalidations, so
    tests can assert the client's refresh behaviour. Further ``tokens`` replace the
    first one after each invalidation, the last one repeating.
    """

    def __init__(self, token: str, *tokens: str) -> None:
        self._tokens = [token, *tokens]
        self.calls = 0
        self.tenants: list[str | None] = []
        self.invalidated: list[str] = []

    def get_token(self, tenant_id: str | None = None) -> str:
        """The next token in the list (the last one once exhausted)."""
        self.tenants.append(tenant_id)
        token = self._tokens[min(len(self.invalidated), len(self._tokens) - 1)]
        self.calls += 1
        return token

    def invalidate(self, token: str, tenant_id: str | None = None) -> None:
        """Record the rejected token; the next ``get_token`` moves down the list."""
        self.invalidated.append(token)


class _TimeoutSession(requests.Session):
    """A Session with a default timeout: requests has no session-wide setting."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._default_timeout = timeout

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self._default_timeout)
        return super().request(method, url, *args, **kwargs)


def build_http_session(ca_bundle: str | None, timeout: float) -> requests.Session:
    """The ``requests.Session`` msal talks through.

    With ``ca_bundle`` it trusts that bundle only and ignores the environment
    (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` and proxy variables): requests merges
    environment settings over ``Session.verify`` unless ``trust_env`` is off.
    """
    session = _TimeoutSession(timeout)
    if ca_bundle:
        session.verify = ca_bundle
        session.trust_env = False
    # One retry on connection failures, as msal does for its own default session.
    adapter = HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class MsalTokenProvider:
    """Client-credentials tokens from msal, one app per tenant authority.

    ``authority`` is the configured tenant's authority, ``https://host/{tenant}``.
    ``get_token(tenant_id)`` for another tenant (a multi-tenant bot acting in a
    customer's tenant, contract §1.2) swaps the last path segment for that tenant.
    Thread-safe: Celery threads and the ASGI server may share one provider.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        authority: str,
        scope: str,
        ca_bundle: str | None = None,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urlsplit(authority.rstrip("/"))
        segments = [s for s in parts.path.split("/") if s]
        if parts.scheme != "https" or not parts.hostname or not segments:
            # msal would refuse it too, with a less helpful message.
            raise ValueError(
                f"the token authority must be https://host/<tenant>, not {authority!r}"
            )
        self._client_id = client_id
        self._client_secret = client_secret
        self._authority = urlunsplit(parts._replace(query="", fragment=""))
        self._default_tenant = segments[-1]
        self._scopes = [scope]
        self._ca_bundle = ca_bundle or None
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._sessions: list[requests.Session] = []
        # tenant -> (token, time after which we ask msal again)
        self._tokens: dict[str, tuple[str, float]] = {}

    @property
    def default_tenant(self) -> str:
        """The tenant named in the configured authority."""
        return self._default_tenant

    def authority_for(self, tenant_id: str | None) -> str:
        """The authority URL for ``tenant_id`` (None: the configured one).

        Raises ``ValueError`` for a tenant id that could not be a path segment.
        """
        tenant = self._tenant(tenant_id)
        if tenant == self._default_tenant:
            return self._authority
        parts = urlsplit(self._authority)
        head, _, _ = parts.path.rstrip("/").rpartition("/")
        return urlunsplit(parts._replace(path=f"{head}/{tenant}"))

    def get_token(self, tenant_id: str | None = None) -> str:
        """An access token for ``tenant_id``, from cache while it has > ~5 min left.

        Raises ``GraphAuthError`` carrying msal's ``error``/``error_description`` (never
        the secret) when the identity platform refuses, and a retryable
        ``GraphAuthError`` (status 0) when it cannot be reached.
        """
        tenant = self._tenant(tenant_id)
        cached = self._tokens.get(tenant)
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        app = self._app(tenant)
        try:
            result = app.acquire_token_for_client(scopes=self._scopes)
        except OSError as exc:  # requests' errors, and its "no CA bundle at path"
            logger.warning(
                "Token endpoint unreachable",
                extra={"tenant_id": tenant, "error_type": type(exc).__name__},
            )
            raise GraphAuthError(
                0,
                "token_endpoint_unreachable",
                f"cannot reach the token endpoint ({type(exc).__name__})",
                retryable=True,
            ) from exc
        return self._remember(tenant, result)

    def invalidate(self, token: str, tenant_id: str | None = None) -> None:
        """Drop ``token`` (rejected by Graph with 401) from our guard and msal's cache.

        Does nothing if another thread has already replaced it.
        """
        tenant = self._tenant(tenant_id)
        with self._lock:
            cached = self._tokens.get(tenant)
            if cached is None or cached[0] != token:
                return
            del self._tokens[tenant]
            app = self._apps.get(tenant)
        if app is not None:
            # msal offers no force_refresh for client credentials; this is its way.
            app.remove_tokens_for_client()

    def _tenant(self, tenant_id: str | None) -> str:
        if not tenant_id:
            return self._default_tenant
        if not _TENANT_ID.match(tenant_id):
            raise ValueError(f"not a tenant id: {tenant_id!r}")
        return tenant_id

    def _app(self, tenant: str) -> msal.ConfidentialClientApplication:
        app = self._apps.get(tenant)
        if app is not None:
            return app
        with self._lock:
            app = self._apps.get(tenant)
            if app is None:
                app = self._build_app(tenant)
                self._apps[tenant] = app
            return app

    def close(self) -> None:
        """Close the HTTP sessions msal uses; later tokens open new ones."""
        with self._lock:
            self._apps = {}
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _build_app(self, tenant: str) -> msal.ConfidentialClientApplication:
        authority = self.authority_for(tenant)
        session = build_http_session(self._ca_bundle, self._timeout)
        self._sessions.append(session)
        host = urlsplit(authority).hostname or ""
        microsoft = host.lower() in WELL_KNOWN_AUTHORITY_HOSTS
        try:
            # Construction fetches the authority's OpenID configuration.
            return msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=self._client_secret,
                authority=authority,
                # For a non-Microsoft host (the emulator, a test server) skip both the
                # validation against Microsoft's list and the discovery call to
                # login.microsoftonline.com.
                validate_authority=microsoft,
                instance_discovery=None if microsoft else False,
                http_client=session,
            )
        except OSError as exc:
            logger.warning(
                "Token authority unreachable",
                extra={"tenant_id": tenant, "error_type": type(exc).__name__},
            )
            raise GraphAuthError(
                0,
                "authority_unreachable",
                f"cannot reach the token authority ({type(exc).__name__})",
                retryable=True,
            ) from exc
        except ValueError as exc:
            # msal: unknown tenant / OpenID discovery refused. Its text names the
            # authority URL only.
            raise GraphAuthError(0, "invalid_authority", str(exc)) from exc

    def _remember(self, tenant: str, result: Any) -> str:
        if not isinstance(result, dict):
            raise GraphAuthError(0, "no_token", "msal returned no result")
        token = result.get("access_token")
        if not isinstance(token, str) or not token:
            error = str(result.get("error") or "no_token")
            description = str(result.get("error_description") or "")
            # The first line of the description holds the reason; the rest is
            # trace/correlation ids.
            description = description.splitlines()[0] if description else ""
            logger.warning(
                "Token acquisition failed",
                extra={"tenant_id": tenant, "msal_error": error},
            )
            raise GraphAuthError(
                0,
                error,
                description,
                retryable=error in _RETRYABLE_MSAL_ERRORS,
            )
        expires_in = _seconds(result.get("expires_in"), default=300.0)
        now = self._clock()
        fresh_until = now + expires_in - _EXPIRY_MARGIN_SECONDS
        refresh_on = result.get("refresh_on")  # msal's proactive-refresh hint, epoch
        if isinstance(refresh_on, int | float):
            fresh_until = min(fresh_until, float(refresh_on))
        self._tokens[tenant] = (token, fresh_until)
        return token


def _seconds(value: Any, *, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default
