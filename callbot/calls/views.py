"""The Graph notification webhook and the health check. Thin: parse, authorize, call
one service, answer."""

from __future__ import annotations

import functools
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from asgiref.sync import async_to_sync, sync_to_async
from celery import current_app
from channels.layers import get_channel_layer

from callbot.calls import arrivals, inbox, inboxapplier, ingestthreads, workerhealth
from callbot.calls.ingest import apply_notifications
from callbot.graph.factory import get_notification_authenticator
from callbot.graph.notification_auth import (
    NotificationAuthError,
    SigningKeysUnavailableError,
)
from callbot.graph.notifications import (
    BatchTooLargeError,
    NotificationFormatError,
    PeekedBatch,
    check_notification_batch,
    parse_notification_batch,
    peek_batch,
)
from callbot.observability import hops, metrics

logger = logging.getLogger(__name__)

# What the webhook asks the platform to wait before delivering again while the
# database is unavailable.
DATABASE_RETRY_AFTER_SECONDS = 5
# The largest body whose calls the webhook reads on the event loop to order it
# (``ingestthreads``; orjson holds the interpreter lock on any thread, so this
# costs the loop what it would beside it); a larger body waits for every batch
# before it and holds back every batch after it.
ORDER_PEEK_BYTES = 4 * 1024 * 1024


def _error(status: int, code: str, message: str) -> JsonResponse:
    metrics.notification_refused(code)
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


class _BodyTooLargeError(Exception):
    """The request body is larger than ``WEBHOOK_MAX_BYTES``."""


def _webhook_body(request: HttpRequest, head: bytes = b"") -> bytes:
    """The body, up to ``WEBHOOK_MAX_BYTES``; raises _BodyTooLargeError beyond.
    ``head``: its first bytes, read already.

    ``request.body`` refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), and
    a batch with the full rosters of a few large meetings is bigger: a 4xx for it
    would make Graph drop it. So the webhook reads its body itself, under its own
    limit, checking the declared length first and then what actually arrives (a
    chunked body declares none). Every other view keeps Django's limit.
    """
    limit = settings.WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise _BodyTooLargeError
    body = head
    if len(body) <= limit:
        body += request.read(limit + 1 - len(body))
    if len(body) > limit:
        raise _BodyTooLargeError
    return body


def _refuse_too_large(
    view: Callable[[HttpRequest, bytes, PeekedBatch | None], JsonResponse],
) -> Callable[[HttpRequest, bytes, PeekedBatch | None], JsonResponse]:
    """Answer 413 (JSON) when ``view`` finds the body too large, or a batch of
    more notifications than we apply in one request."""

    @functools.wraps(view)
    def wrapped(
        request: HttpRequest, head: bytes = b"", peeked: PeekedBatch | None = None
    ) -> JsonResponse:
        try:
            return view(request, head, peeked)
        except _BodyTooLargeError:
            limit = settings.WEBHOOK_MAX_BYTES
            logger.warning("notification batch larger than %d bytes refused", limit)
            return _error(
                413, "payload_too_large", f"the body is larger than {limit} bytes"
            )
        except BatchTooLargeError as exc:
            logger.warning("notification batch refused: %s", exc)
            return _error(413, "payload_too_large", str(exc))

    return wrapped


@csrf_exempt
@require_POST
async def callback(request: HttpRequest) -> JsonResponse:
    """Receive a Graph notification batch (contract §7, §8): ``_callback`` on an
    ingest thread where there are (``ingestthreads``), else where Django runs
    synchronous views. The ``Server-Timing`` header of a 202 gives the time from
    here to the answer, any wait for the ingest thread included."""
    started = time.perf_counter()
    with arrivals.arriving():
        response = await _answer(request)
    if response.status_code == 202:
        elapsed_ms = (time.perf_counter() - started) * 1000
        response["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
    return response


async def _answer(request: HttpRequest) -> JsonResponse:
    """``callback``'s answer, while the request counts as in flight
    (``arrivals``)."""
    threads = ingestthreads.executor()
    if threads is None:
        response = await sync_to_async(_callback)(request, b"", None)
    else:
        head = b""
        peeked: PeekedBatch | None = None
        if inbox.deferred():
            # Stored, not applied: the order is the rows' (a batch is stored
            # before it is answered), so batches need not wait for one another.
            keys: frozenset[str] | None = frozenset()
        else:
            # The calls it names, for the threads to keep their order: read
            # here from a body up to ORDER_PEEK_BYTES, else unknown. Its
            # document is parsed once verified, not decoded again.
            head = request.read(ORDER_PEEK_BYTES + 1)
            if len(head) <= ORDER_PEEK_BYTES:
                peeked = peek_batch(head)
            keys = peeked.keys if peeked is not None else None
        # asgiref types its executor as a thread pool; it only calls submit().
        ordered = cast(ThreadPoolExecutor, threads.for_calls(keys))
        response = await sync_to_async(
            ingestthreads.run, thread_sensitive=False, executor=ordered
        )(_callback, request, head, peeked)
    return response


@_refuse_too_large
def _callback(
    request: HttpRequest, head: bytes, peeked: PeekedBatch | None
) -> JsonResponse:
    """Verify, parse and apply a notification batch (``peeked``: what
    ``peek_batch`` read of it before it was verified, if anything).

    401 without a valid bearer token, 400 for a body that is not a notification
    batch, 413 past ``WEBHOOK_MAX_BYTES``, 503 (JSON, with Retry-After) when the
    signing keys cannot be fetched or the database is unavailable, so the platform
    delivers again; nothing is stored in any of these cases. A valid batch is
    applied and answered 202, a notification in it that cannot be applied being
    quarantined (ingest.py); the live deltas go out after commit. With
    ``WEBHOOK_APPLY = "deferred"`` it is stored and answered 202 instead, and
    applied after (``inbox.py``).
    """
    started = time.perf_counter()
    arrived = time.time() if hops.ENABLED else 0.0
    try:
        claims = get_notification_authenticator().validate(
            request.headers.get("Authorization")
        )
    except SigningKeysUnavailableError as exc:
        # Our outage, not a forged request: 503 so the platform delivers it again.
        logger.error("cannot check notification tokens: %s", exc.reason)
        return _error(503, "signing_keys_unavailable", exc.reason)
    except NotificationAuthError as exc:
        logger.warning("refused notification: %s", exc.reason)
        return _error(401, "unauthorized", exc.reason)
    deferred = inbox.deferred()
    try:
        body = _webhook_body(request, head)
        if deferred:
            # Refused as parsing would refuse it; parsed by the applier.
            count = check_notification_batch(body)
        else:
            notifications = parse_notification_batch(body, peeked)
    except NotificationFormatError as exc:
        logger.warning("malformed notification batch: %s", exc)
        return _error(400, "bad_request", str(exc))
    message_id = request.headers.get("X-Microsoft-Skype-Message-ID", "")
    if deferred:
        return _store(body, count, message_id, claims.tenant_id, arrived)
    try:
        result = apply_notifications(
            notifications, message_id=message_id, tenant_id=claims.tenant_id
        )
    except (OperationalError, InterfaceError) as exc:
        return _database_unavailable(exc)
    metrics.batch_ingested(len(notifications), time.perf_counter() - started)
    return JsonResponse(
        {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "quarantined": result.quarantined,
        },
        status=202,
    )


def _store(
    body: bytes, count: int, message_id: str, tenant_id: str, arrived: float = 0.0
) -> JsonResponse:
    """Deferred mode: keep the batch (one committed row), wake the applier and
    answer 202 ``{"accepted": n}``; what became of each notification is decided
    when it is applied (``inbox.py``), in arrival order."""
    try:
        inbox.store(
            body,
            message_id=message_id,
            tenant_id=tenant_id,
            notifications=count,
        )
    except (OperationalError, InterfaceError) as exc:
        return _database_unavailable(exc)
    if hops.ENABLED:
        keys = hops.call_keys(body)
        hops.mark("webhook", keys, arrived)
        hops.mark("stored", keys)
    inboxapplier.kick()
    return JsonResponse({"accepted": count}, status=202)


def _database_unavailable(exc: Exception) -> JsonResponse:
    # Our database is away (a restart, a failover). The batch was one
    # transaction (or one row), so nothing of it was kept: 503 asks the platform
    # to deliver it again, and ingest's digests make the redelivery apply once.
    logger.error("database unavailable, notification batch refused: %s", exc)
    response = _error(
        503, "database_unavailable", "The database is unavailable; deliver again."
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True, "vendor": connection.vendor}


def _check_channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer configured"}
    channel = f"healthz.{uuid.uuid4().hex}"

    async def round_trip() -> bool:
        await layer.send(channel, {"type": "healthz.ping"})
        message = await layer.receive(channel)
        return bool(message.get("type") == "healthz.ping")

    return {"ok": async_to_sync(round_trip)(), "backend": type(layer).__name__}


def _check_broker() -> dict[str, Any]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "in-process"}
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"ok": True, "mode": "broker", "transport": conn.transport_cls}


# The dashboard's Role.ADMIN group; callbot.calls does not import dashboard.
HEALTH_DETAILS_GROUP = "Admin"


def _may_see_health_details(request: HttpRequest) -> bool:
    """A signed-in admin (staff, superuser or the Admin role group), or a caller
    presenting ``Authorization: Bearer <HEALTHZ_TOKEN>``, compared in constant time."""
    token = settings.HEALTHZ_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), token.encode())
    ):
        return True
    user = request.user
    if not (user.is_authenticated and user.is_active):
        return False
    return bool(
        user.is_staff
        or user.is_superuser
        or user.groups.filter(name=HEALTH_DETAILS_GROUP).exists()
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, channel layer and broker status; 503 if any is down.

    Anyone gets only ``{"status": "ok"}`` or ``{"status": "degraded"}`` (for load
    balancers): which backend failed, and its host and port, are for admins and
    holders of HEALTHZ_TOKEN (``_may_see_health_details``), and always in the log.

    Their detail also has ``worker``: whether a worker performs tasks
    (``workerhealth.check``). It never turns the answer 503: the web process serves
    well without a worker, and a load balancer taking it out would only add an
    outage. A failing worker raises the ``worker_down`` alert instead: each probe
    applies that rule (``workerhealth.note_when_due``), since it cannot wait for
    beat's sweep, which a worker runs.

    It also starts the webhook inbox's applier if it is not running
    (``inboxapplier.start``): health checks ask for this as the process starts.
    """
    inboxapplier.start()
    checks: dict[str, dict[str, Any]] = {}
    for name, check in (
        ("database", _check_database),
        ("channel_layer", _check_channel_layer),
        ("broker", _check_broker),
    ):
        try:
            checks[name] = check()
        except Exception as exc:
            logger.warning("health check %s failed: %s", name, exc)
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    healthy = all(c.get("ok") for c in checks.values())
    if checks["database"].get("ok"):
        workerhealth.note_when_due()
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded"}
    if _may_see_health_details(request):
        try:
            checks["worker"] = workerhealth.check().as_dict()
        except Exception as exc:
            checks["worker"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        if not checks["worker"]["ok"]:
            logger.warning("health check worker failed: %s", checks["worker"])
        body["checks"] = checks
    response = JsonResponse(body, status=200 if healthy else 503)
    # A cache between a load balancer and us must not answer for us.
    response["Cache-Control"] = "no-store"
    return response
