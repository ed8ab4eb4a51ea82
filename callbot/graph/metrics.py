"""Prometheus metrics of the Graph edge, fed by httpx event hooks on the one client.

Every request ``GraphTransport`` sends (each attempt, retries included) is timed
from the request hook to the response hook and counted by endpoint, method and
status. The endpoint is the path with its ids replaced by ``{id}``
(``/communications/calls/{id}/participants/{id}/mute``), so the label set stays
small however many calls there are. Transport failures (no response) count with
status ``error`` from the transport itself, as no response hook runs for them.

Only ``prometheus_client`` here: the exposition is the project's business
(``callbot/observability``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter, Histogram

GRAPH_REQUEST_SECONDS = Histogram(
    "callbot_graph_request_duration_seconds",
    "Time from sending a request to Graph to its response headers, per attempt.",
    ["endpoint", "method", "status"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GRAPH_THROTTLED = Counter(
    "callbot_graph_throttled_total",
    "Graph answers of 429 Too Many Requests.",
    ["endpoint"],
)
GRAPH_RETRIES = Counter(
    "callbot_graph_retries_total",
    "Graph requests sent again after a retryable failure, by what failed "
    "(an HTTP status, or the transport error's name).",
    ["reason"],
)

_STARTED = "callbot.started"
# A path segment kept as is: a word such as ``calls`` or ``playPrompt`` (or
# ``$value``, ``microsoft.graph.x``); anything with a digit or a dash is an id.
_WORD = re.compile(r"^[A-Za-z$][A-Za-z.]*$")
_VERSION = re.compile(r"^(v\d+(\.\d+)?|beta)$")


def endpoint_of(url: str | httpx.URL) -> str:
    """The path of ``url`` with ids replaced by ``{id}``, the API version dropped."""
    segments = [s for s in urlsplit(str(url)).path.split("/") if s]
    if segments and _VERSION.match(segments[0]):
        segments = segments[1:]
    return "/" + "/".join(s if _WORD.match(s) else "{id}" for s in segments)


def _on_request(request: httpx.Request) -> None:
    request.extensions[_STARTED] = time.perf_counter()


def _on_response(response: httpx.Response) -> None:
    request = response.request
    started = request.extensions.get(_STARTED)
    endpoint = endpoint_of(request.url)
    if started is not None:
        GRAPH_REQUEST_SECONDS.labels(
            endpoint, request.method, str(response.status_code)
        ).observe(time.perf_counter() - started)
    if response.status_code == 429:
        GRAPH_THROTTLED.labels(endpoint).inc()


def note_transport_failure(exc: httpx.TransportError) -> None:
    """Time a request that got no response (connect or read timeout, reset)."""
    try:
        request = exc.request
    except RuntimeError:  # raised before a request existed
        return
    started = request.extensions.get(_STARTED)
    if started is not None:
        GRAPH_REQUEST_SECONDS.labels(
            endpoint_of(request.url), request.method, "error"
        ).observe(time.perf_counter() - started)


def note_retry(reason: str) -> None:
    GRAPH_RETRIES.labels(reason).inc()


def event_hooks() -> dict[str, list[Callable[..., Any]]]:
    """Hooks for a new ``httpx.Client``: time and count every attempt."""
    return {"request": [_on_request], "response": [_on_response]}
