"""Serving the metrics: ``/metrics`` on every web process, and a small HTTP server
in a separate Celery worker (``METRICS_WORKER_PORT``).

Who may read them: a caller with ``Authorization: Bearer <METRICS_TOKEN>``; with no
token set, on the embedded default only, a caller on the loopback address (the
person running ``make run``). Anywhere else without a token, nobody: metrics name
the load and the shape of a deployment.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from prometheus_client import REGISTRY, generate_latest, make_wsgi_app
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from callbot.observability.collectors import SCRAPE_REGISTRY

logger = logging.getLogger(__name__)


def _token_matches(authorization: str) -> bool:
    token: str = settings.METRICS_TOKEN
    scheme, _, offered = authorization.partition(" ")
    return bool(
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(offered.strip().encode(), token.encode())
    )


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def may_scrape(authorization: str, remote_addr: str) -> bool:
    if _token_matches(authorization):
        return True
    return bool(settings.EMBEDDED_DEFAULT) and _loopback(remote_addr)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """This process's metrics and the scrape-time readings, in Prometheus' text
    format; 401 for a caller who may not read them."""
    if not may_scrape(
        request.headers.get("Authorization", ""), request.META.get("REMOTE_ADDR", "")
    ):
        response = HttpResponse("metrics need a bearer token\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = generate_latest(REGISTRY) + generate_latest(SCRAPE_REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


StartResponse = Callable[..., Any]


def _guarded(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Any:
        if not may_scrape(
            environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", "")
        ):
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"metrics need a bearer token\n"]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_worker_metrics(port: int, address: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve this process's registry on ``address:port`` from a daemon thread
    (the Celery worker's: it has no Django views). Returns the server."""
    server = make_server(
        address, port, _guarded(make_wsgi_app(REGISTRY)), handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    logger.info("worker metrics on %s:%d/metrics", address, port)
    return server
