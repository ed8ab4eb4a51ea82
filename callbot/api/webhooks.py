"""Outbound webhooks: queue an event for the endpoints that want it, sign it, and
try each delivery until it is accepted or its attempts are spent.

Signatures follow the Standard Webhooks convention: ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body" keyed with the secret's base64-decoded bytes>``.

A target must resolve only to public addresses (no loopback, private, link-local,
shared or reserved ones) unless ``WEBHOOK_ALLOW_PRIVATE_TARGETS``: every address
the name resolves to is checked, and the request then goes to one of those
checked addresses (TLS still verifies the name), so a name that resolves again
differently cannot slip past. Redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

import urllib3

from callbot.api.models import (
    SECRET_PREFIX,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from callbot.calls import enqueue

logger = logging.getLogger(__name__)

DELIVER_WEBHOOK = "callbot.api.deliver_webhook"
# Longest wait between two attempts.
MAX_BACKOFF_SECONDS = 24 * 3600
USER_AGENT = "Callbot-Webhooks/1"
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTargetError(Exception):
    """The URL's host resolves to an address webhooks may not reach (or none)."""


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header's value for one message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _public(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def resolve_target(url: str) -> Target:
    """The URL's parts and the addresses to connect to; raises
    ``UnsafeTargetError`` when any of them is not public (unless allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTargetError("Webhook URLs are http:// or https:// with a host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeTargetError("The URL's port is not a number.") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTargetError(f"{parts.hostname} does not resolve: {exc}") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise UnsafeTargetError(f"{parts.hostname} does not resolve.")
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for text in addresses:
            if not _public(ipaddress.ip_address(text)):
                raise UnsafeTargetError(
                    f"{parts.hostname} resolves to {text}, a non-public address "
                    "(set WEBHOOK_ALLOW_PRIVATE_TARGETS to allow it)."
                )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, parts.hostname, port, path, addresses)


def backoff(attempts: int) -> float:
    """Seconds before the attempt after ``attempts`` failed ones: base, 2x, 4x..."""
    return float(
        min(settings.WEBHOOK_BACKOFF_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    )


# --- queueing -----------------------------------------------------------------------


def queue_event(
    event: str, data: dict[str, Any], *, subject: str = ""
) -> list[WebhookDelivery]:
    """Store one delivery per enabled endpoint wanting ``event`` and send each
    after commit. The body is fixed here: every attempt sends the same bytes.

    With a ``subject`` (``"call.started:42"``) an endpoint that already has a
    delivery for it gets no second one (the unique constraint decides races)."""
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(enabled=True) if e.wants(event)
    ]
    if not endpoints:
        return []
    now = timezone.now()
    body = json.dumps(
        {"type": event, "timestamp": now.isoformat(), "data": data},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
    created = []
    with transaction.atomic():
        for endpoint in endpoints:
            delivery = WebhookDelivery(
                endpoint=endpoint,
                event=event,
                subject=subject[:100],
                body=body,
                next_attempt_at=now,
            )
            try:
                with transaction.atomic():
                    delivery.save()
            except IntegrityError:
                continue  # this endpoint has heard of it already
            enqueue.send_on_commit(DELIVER_WEBHOOK, delivery.pk)
            created.append(delivery)
    return created


# --- one attempt ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str
    excerpt: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(target: Target, headers: dict[str, str], body: bytes) -> Outcome:
    """POST to the target's checked addresses in turn until one takes the
    connection; the first answer (or the last failure) is the outcome."""
    started = time.monotonic()
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if ":" not in target.host else f"[{target.host}]"
    headers["Host"] = host if target.port == default_port else f"{host}:{target.port}"
    error = ""
    for address in target.addresses:
        try:
            with _pool(target, address) as pool:
                response = pool.urlopen(
                    "POST",
                    target.path,
                    body=body,
                    headers=headers,
                    redirect=False,
                    preload_content=False,
                )
                excerpt = response.read(500, decode_content=False)
                response.release_conn()
        except urllib3.exceptions.NewConnectionError as exc:
            error = f"{type(exc).__name__}: {exc}"
            continue  # the next address may listen
        except urllib3.exceptions.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            break
        elapsed = int((time.monotonic() - started) * 1000)
        text = excerpt.decode("utf-8", "replace")[:500]
        return Outcome(response.status, "", text, elapsed)
    elapsed = int((time.monotonic() - started) * 1000)
    return Outcome(None, error[:500], "", elapsed)


def _pool(target: Target, address: str) -> urllib3.HTTPConnectionPool:
    """A pool to one checked address; TLS verifies the URL's host name."""
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            target.port,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            timeout=timeout,
            retries=False,
        )
    return urllib3.HTTPConnectionPool(
        address, target.port, timeout=timeout, retries=False
    )


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    """Take the next attempt of a due, pending delivery; None if another worker
    has it, it is not due, or it is over. The lease keeps the sweep off it."""
    delivery = (
        WebhookDelivery.objects.select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    taken = (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, attempts=delivery.attempts
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=delivery.attempts + 1, next_attempt_at=lease)
    )
    if not taken:
        return None
    delivery.attempts += 1
    return delivery


def attempt_delivery(delivery_id: int) -> float | None:
    """Make the next attempt of a delivery now, if it is due; record it.

    1. Claim the attempt (a guarded update: one worker per attempt).
    2. Check the target (``resolve_target``) and POST the signed body.
    3. Record the attempt; a 2xx delivers, else the delivery waits ``backoff``
       seconds, or fails for good after ``WEBHOOK_MAX_ATTEMPTS``.

    Returns the seconds until the next attempt, or None when there is none.
    """
    now = timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret, delivery.message_id, timestamp, delivery.body)
            for secret in endpoint.signing_secrets(now)
        ),
    }
    try:
        target = resolve_target(endpoint.url)
    except UnsafeTargetError as exc:
        outcome = Outcome(None, str(exc)[:500], "", 0)
    else:
        outcome = _post(target, headers, delivery.body.encode())
    return _record(delivery, outcome, now)


def _record(delivery: WebhookDelivery, outcome: Outcome, at: datetime) -> float | None:
    done = timezone.now()
    wait: float | None = None
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=at,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
            response_excerpt=outcome.excerpt,
        )
        if outcome.ok:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.finished_at = done
            delivery.next_attempt_at = None
        elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
            delivery.finished_at = done
            delivery.next_attempt_at = None
        else:
            wait = backoff(delivery.attempts)
            delivery.next_attempt_at = done + timedelta(seconds=wait)
        delivery.save(update_fields=["status", "finished_at", "next_attempt_at"])
    log = logger.info if outcome.ok else logger.warning
    log(
        "webhook %s attempt %d: %s",
        delivery.event,
        delivery.attempts,
        outcome.status_code or outcome.error,
        extra={"delivery_id": delivery.pk, "endpoint_id": delivery.endpoint_id},
    )
    return wait


def due_deliveries(now: datetime | None = None, limit: int = 100) -> list[int]:
    """Pending deliveries whose next attempt is due (the sweep's work)."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
