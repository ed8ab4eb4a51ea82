"""The wire under ``GraphClient``: one method sends every request to Graph.

``GraphTransport.send`` owns, for every request and nowhere else:

* ``Authorization: Bearer`` from the token provider, dropped and fetched again once
  when Graph answers 401;
* ``Content-Type: application/json`` and a ``client-request-id`` — the caller's (a
  Celery task reuses the one it stored, so Graph can dedupe a retried action), else a
  fresh uuid4 — identical across this request's own retries;
* timeouts, and retries of 429, 5xx, 408 and transport failures honouring
  ``Retry-After`` (seconds, fractional, or an HTTP-date) or jittered exponential
  backoff, bounded by ``retry_budget_seconds`` of wall time (then the typed error);
* mapping failures to ``callbot.graph.errors``;
* logging with ``extra=`` ids — never tokens, headers or bodies, nor a URL's query.

It is healthchecks' ``hc/lib/curl.py`` idea: one place that knows HTTP. Nothing here
imports Django.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from callbot.graph import metrics
from callbot.graph.errors import GraphError, GraphTransientError, error_from_response
from callbot.graph.resources import JsonDict, ResourceFormatError
from callbot.graph.tokens import InvalidatingTokenProvider, TokenProvider

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long an idle connection stays in the pool (httpx keeps one 5 s). Requests
# from several threads overlap (an Answer click and another call's prompt), so the
# pool holds a second connection used only now and then; at 5 s it was dropped
# between uses, and the next overlapping request paid a new TCP and TLS
# handshake (10-50 ms on a busy machine) before reaching Graph. A connection the
# server has closed meanwhile is noticed before reuse, or fails as a transport
# error, which is retried.
KEEPALIVE_SECONDS = 60.0

# Backoff when Graph sends no Retry-After: 0.5 s, 1 s, 2 s, ... capped, times a
# jitter factor in [0.5, 1) so workers that failed together do not retry together.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# A guard independent of the budget, for a server answering "Retry-After: 0" forever.
MAX_ATTEMPTS = 10
_jitter = random.SystemRandom()


class GraphTransport:
    """Sends requests to Graph with auth, correlation ids, retries and error mapping.

    Thread-safe; the ``httpx.Client`` is built on first use, so a CA bundle the
    emulator writes at start-up need not exist when the transport is created.
    """

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        timeout: float = 10.0,
        retry_budget_seconds: float = 30.0,
        ca_bundle: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.retry_budget_seconds = retry_budget_seconds
        self._tokens = token_provider
        self._timeout = timeout
        self._ca_bundle = ca_bundle or None
        self._transport = transport
        self._sleep = sleep
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    def close(self) -> None:
        """Close the connection pool (and the token provider's, if it has one);
        the next request opens a new one."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
        close_tokens = getattr(self._tokens, "close", None)
        if callable(close_tokens):
            close_tokens()

    def access_token(self, tenant_id: str | None = None, *, fresh: bool = False) -> str:
        """The bearer token requests to ``tenant_id`` carry; with ``fresh``, the
        cached one is dropped first (when the provider can) so the answer reflects
        permissions granted or revoked since. Raises ``GraphAuthError``."""
        token = self._tokens.get_token(tenant_id)
        if fresh and isinstance(self._tokens, InvalidatingTokenProvider):
            self._tokens.invalidate(token, tenant_id)
            token = self._tokens.get_token(tenant_id)
        return token

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        tenant_id: str | None = None,
        body: Mapping[str, Any] | None = None,
        client_request_id: str | None = None,
        bearer: str | None = None,
    ) -> httpx.Response:
        """Send one logical request; return the 2xx response or raise ``GraphError``.

        ``path_or_url`` is a path under the base URL or an absolute URL (a next link,
        a recording location). ``bearer`` replaces the provider's token (recording
        downloads carry their own); such requests send no JSON content type.

        1. Headers: the bearer token for ``tenant_id``, JSON content type, and one
           ``client-request-id`` for every attempt.
        2. On 401 with a provider token, drop the token and retry once at once; a
           second 401 raises ``GraphAuthError``.
        3. On a retryable failure, wait ``Retry-After`` (else backoff) if that still
           fits ``retry_budget_seconds`` counting the time spent so far; otherwise,
           or after ``MAX_ATTEMPTS``, raise the typed error.

        Raises ``GraphAuthError`` from the token provider as is.
        """
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        crid = client_request_id or str(uuid.uuid4())
        content = None if body is None else json.dumps(body).encode()
        log_extra: dict[str, Any] = {
            "graph_method": method,
            "graph_path": urlsplit(url).path,  # never the query: it may hold a token
            "client_request_id": crid,
            "tenant_id": tenant_id,
        }
        started = time.monotonic()
        slept = 0.0
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            log_extra["attempt"] = attempt
            token = bearer or self._tokens.get_token(tenant_id)
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json" if bearer is None else "*/*",
                "client-request-id": crid,
                "return-client-request-id": "true",
            }
            if bearer is None:
                headers["Content-Type"] = "application/json"
            cause: Exception | None = None
            try:
                response = self._client().request(
                    method, url, content=content, headers=headers
                )
            except httpx.TransportError as exc:  # connect/read timeouts, resets, TLS
                cause = exc
                metrics.note_transport_failure(exc)
                error: GraphError = GraphTransientError(
                    0,
                    type(exc).__name__,
                    "no response from Graph",
                    client_request_id=crid,
                )
            except httpx.RequestError as exc:  # decoding, redirects: not transient
                raise GraphError(
                    0, type(exc).__name__, "request failed", client_request_id=crid
                ) from exc
            else:
                log_extra["graph_status"] = response.status_code
                log_extra["request_id"] = response.headers.get("request-id")
                log_extra["elapsed_ms"] = round((time.monotonic() - started) * 1000)
                if response.is_success:
                    logger.debug("Graph request succeeded", extra=log_extra)
                    return response
                error = error_from_response(
                    response.status_code,
                    response.content,
                    response.headers,
                    now=time.time(),
                )
                error.client_request_id = error.client_request_id or crid
                if response.status_code == 401 and bearer is None and not refreshed:
                    refreshed = True
                    if isinstance(self._tokens, InvalidatingTokenProvider):
                        self._tokens.invalidate(token, tenant_id)
                    logger.info("Graph refused the token; refreshing", extra=log_extra)
                    continue
            log_extra["error_code"] = error.code
            if not error.retryable or attempt >= MAX_ATTEMPTS:
                logger.warning(
                    "Graph request failed: %s %s -> %s %s",
                    method,
                    log_extra["graph_path"],
                    log_extra.get("graph_status", "no response"),
                    error.code,
                    extra=log_extra,
                )
                raise error from cause
            delay = error.retry_after
            if delay is None:
                backoff = BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)
                delay = min(BACKOFF_CAP_SECONDS, backoff) * _jitter.uniform(0.5, 1.0)
            log_extra["retry_after"] = delay
            # Under a fake sleep (tests) the clock stands still, so count sleeps too.
            spent = max(time.monotonic() - started, slept)
            if spent + delay > self.retry_budget_seconds:
                logger.warning(
                    "Graph retry budget exhausted: %s %s -> %s %s",
                    method,
                    log_extra["graph_path"],
                    log_extra.get("graph_status", "no response"),
                    error.code,
                    extra=log_extra,
                )
                raise error from cause
            logger.info(
                "Retrying Graph request %s %s in %.1f s (%s)",
                method,
                log_extra["graph_path"],
                delay,
                error.code,
                extra=log_extra,
            )
            metrics.note_retry(str(error.status or error.code))
            self._sleep(delay)
            slept += delay

    def same_origin(self, url: str, response: httpx.Response) -> str:
        """``url`` if it is on the Graph host; a next link elsewhere would receive our
        bearer token, so that raises ``GraphError``."""
        base = urlsplit(self.base_url)
        target = urlsplit(url)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise invalid_response(response, "nextLink points at another host")
        return url

    def _client(self) -> httpx.Client:
        client = self._http
        if client is None:
            with self._lock:
                client = self._http
                if client is None:
                    client = self._http = self._build_client()
        return client

    def _build_client(self) -> httpx.Client:
        verify: ssl.SSLContext | bool = True
        if self._ca_bundle:
            # httpx 0.28 deprecates verify=<path>; a context trusts exactly this CA.
            verify = ssl.create_default_context(cafile=self._ca_bundle)
        return httpx.Client(
            transport=self._transport,
            verify=verify,
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
            follow_redirects=False,
            event_hooks=metrics.event_hooks(),
        )


# --- reading responses --------------------------------------------------------------


def json_object(response: httpx.Response) -> JsonDict:
    """The response body as a JSON object; ``{}`` for an empty body.

    Raises ``GraphError`` (code ``InvalidResponse``) for anything else.
    """
    if not response.content:
        return {}
    try:
        data = json.loads(response.content)
    except ValueError:
        raise invalid_response(response, "response body is not JSON") from None
    if not isinstance(data, dict):
        raise invalid_response(response, "response body is not a JSON object")
    return data


def parse_resource(
    parser: Callable[[Any], T], response: httpx.Response, data: Any
) -> T:
    """``parser(data)``, turning a malformed resource into ``GraphError``."""
    try:
        return parser(data)
    except ResourceFormatError as exc:
        raise invalid_response(response, str(exc)) from exc


def invalid_response(response: httpx.Response, why: str) -> GraphError:
    """A 2xx whose body is not what the contract describes: not retryable."""
    return GraphError(
        response.status_code,
        "InvalidResponse",
        why,
        request_id=response.headers.get("request-id"),
        client_request_id=response.headers.get("client-request-id"),
    )


def location_id(response: httpx.Response) -> str | None:
    """The last path segment of the ``Location`` header (a new call or operation id)."""
    location = response.headers.get("location")
    if not location:
        return None
    segment = urlsplit(location).path.rstrip("/").rpartition("/")[2]
    return segment or None
