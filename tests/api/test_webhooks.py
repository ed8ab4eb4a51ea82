"""Outbound webhooks: Standard Webhooks signatures a receiver can verify, retries
with exponential backoff, every attempt recorded, and no private targets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.utils import timezone

import pytest
import trustme

from callbot.api import webhooks
from callbot.api.admin import WebhookEndpointForm
from callbot.api.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from callbot.api.tasks import deliver_webhook, send_due_webhooks
from callbot.calls import alerts, lifecycle
from callbot.calls.signals import CallActivity, call_activity
from callbot.celery import app as celery_app
from tests.factories import ActionFactory, CallFactory


class Receiver:
    """A real HTTP server on loopback that answers with the next queued status."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append(
                    (
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                status = outer.statuses.pop(0) if outer.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        # A free port of its own: runs side by side never share a receiver.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/callbot?tenant=1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def eager_tasks(settings: Any) -> Iterator[None]:
    """Tasks run in the test's process, as on the embedded default, even when
    REDIS_URL is set (the Celery app reads its settings once)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def endpoint(
    db: Any, settings: Any, receiver: Receiver, eager_tasks: None
) -> WebhookEndpoint:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    return WebhookEndpoint.objects.create(
        url=receiver.url, events=[e.value for e in WebhookEvent]
    )


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (the Standard Webhooks reference, written out)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    return any(
        hmac.compare_digest(sig.partition(",")[2].encode(), expected)
        for sig in headers["webhook-signature"].split()
        if sig.startswith("v1,")
    )


def test_a_delivery_is_signed_so_the_receiver_can_verify_it(
    endpoint: WebhookEndpoint,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = webhooks.queue_event("call.started", {"id": 7})
    headers, body = receiver.requests[0]
    assert verify(endpoint.secret, headers, body)
    assert not verify(endpoint.secret, headers, body + b" ")
    assert headers["webhook-id"] == delivery.message_id
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 30
    assert json.loads(body) == {
        "type": "call.started",
        "timestamp": json.loads(body)["timestamp"],
        "data": {"id": 7},
    }
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempt_rows.get().status_code == 204


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(
    endpoint: WebhookEndpoint,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    old = endpoint.secret
    endpoint.rotate_secret(timedelta(hours=24), timezone.now())
    assert endpoint.secret != old
    assert endpoint.secret.startswith("whsec_")

    with django_capture_on_commit_callbacks(execute=True):
        webhooks.queue_event("call.started", {"id": 8})
    headers, body = receiver.requests[-1]
    # A receiver still on the old secret and one already on the new both verify.
    assert verify(old, headers, body)
    assert verify(endpoint.secret, headers, body)
    assert len(headers["webhook-signature"].split()) == 2

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        previous_secret_until=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.queue_event("call.started", {"id": 9})
    headers, body = receiver.requests[-1]
    assert verify(endpoint.secret, headers, body)
    assert not verify(old, headers, body)
    assert len(headers["webhook-signature"].split()) == 1


def test_a_refused_delivery_is_retried_with_growing_waits_then_given_up(
    endpoint: WebhookEndpoint, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_BACKOFF_SECONDS = 10
    receiver.statuses = [500, 503, 502]
    (delivery,) = webhooks.queue_event("alert.raised", {"id": 1})
    waits = []
    for _ in range(3):
        before = timezone.now()
        deliver_webhook(delivery.pk)
        delivery.refresh_from_db()
        if delivery.next_attempt_at is not None:
            waits.append(round((delivery.next_attempt_at - before).total_seconds()))
            # Not due yet: a second run (a duplicate message, the sweep) does nothing.
            assert webhooks.attempt_delivery(delivery.pk) is None
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                next_attempt_at=timezone.now() - timedelta(seconds=1)
            )
    assert waits == [10, 20]
    assert delivery.status == DeliveryStatus.FAILED
    assert [
        a.status_code for a in WebhookAttempt.objects.filter(delivery=delivery)
    ] == [500, 503, 502]
    # The same message every time: id and body (a receiver deduplicates on the id).
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    assert len({b for _, b in receiver.requests}) == 1


def test_the_sweep_sends_deliveries_whose_retry_is_due(
    endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    (delivery,) = webhooks.queue_event("call.ended", {"id": 2})
    deliver_webhook(delivery.pk)
    assert send_due_webhooks() == 0
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    assert send_due_webhooks() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 2)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:18531/hook",
        "http://localhost:18531/hook",
        "http://[::1]:18531/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "ftp://example.com/hook",
    ],
)
def test_private_and_loopback_targets_are_refused(url: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(webhooks.UnsafeTargetError):
        webhooks.resolve_target(url)


def test_a_refused_target_is_recorded_and_never_contacted(
    endpoint: WebhookEndpoint, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    (delivery,) = webhooks.queue_event("call.started", {"id": 3})
    deliver_webhook(delivery.pk)
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "non-public address" in attempt.error
    assert receiver.requests == []


def test_the_admin_form_refuses_a_private_target(db: Any, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    form = WebhookEndpointForm(
        data={"url": "http://127.0.0.1/x", "events": ["call.started"], "enabled": True}
    )
    assert not form.is_valid()
    assert "non-public" in str(form.errors["url"])


def test_calls_starting_and_ending_are_sent_to_endpoints_that_want_them(
    endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    endpoint.events = ["call.ended"]
    endpoint.save()
    call = CallFactory(state="terminated")
    activity = CallActivity(
        call_id=call.pk,
        graph_id=call.graph_id,
        created=True,
        direction=call.direction,
        kind=call.kind,
        state=call.state,
        state_changed=True,
        terminated=True,
    )
    call_activity.send(sender=type(call), activity=[activity])
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event == "call.ended"
    assert json.loads(delivery.body)["data"]["graph_id"] == call.graph_id


def activity_of(call: Any, **changes: Any) -> CallActivity:
    fields: dict[str, Any] = {
        "call_id": call.pk,
        "graph_id": call.graph_id,
        "created": False,
        "direction": call.direction,
        "kind": call.kind,
        "state": call.state,
        "state_changed": False,
    }
    return CallActivity(**{**fields, **changes})


def test_a_call_is_announced_as_started_once(endpoint: WebhookEndpoint) -> None:
    incoming = CallFactory(state="incoming")
    # Its first notification, then a redelivery while it still rings undecided.
    call_activity.send(
        sender=type(incoming), activity=[activity_of(incoming, created=True)]
    )
    call_activity.send(
        sender=type(incoming), activity=[activity_of(incoming, created=True)]
    )
    # A call the bot placed: started when it is established.
    placed = CallFactory(state="established", direction="outgoing")
    call_activity.send(
        sender=type(placed),
        activity=[activity_of(placed, state="established", state_changed=True)],
    )
    started = WebhookDelivery.objects.filter(event="call.started")
    assert sorted(json.loads(d.body)["data"]["id"] for d in started) == sorted(
        [incoming.pk, placed.pk]
    )


def test_an_action_finishing_is_sent_once_it_commits(
    endpoint: WebhookEndpoint,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    action = ActionFactory(status="sent")
    with django_capture_on_commit_callbacks(execute=True):
        assert lifecycle.finish(
            action, "failed", now=timezone.now(), error_code="graph_404"
        )
        action.save(update_fields=list(lifecycle.FINISH_FIELDS))
    events = {d.event: d for d in WebhookDelivery.objects.all()}
    assert "action.failed" in events
    data = json.loads(events["action.failed"].body)["data"]
    assert (data["id"], data["status"], data["error_code"]) == (
        action.pk,
        "failed",
        "graph_404",
    )
    # lifecycle raised the action_failed alert: sent as well.
    assert "alert.raised" in events


def test_an_alert_raised_is_sent_and_its_repeats_are_not(
    endpoint: WebhookEndpoint,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    call = CallFactory()
    with django_capture_on_commit_callbacks(execute=True):
        alerts.raise_alert("bot_dropped", call, "Dropped")
    with django_capture_on_commit_callbacks(execute=True):
        alerts.raise_alert("bot_dropped", call, "Dropped again")
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == [
        "alert.raised"
    ]


def test_disabled_endpoints_and_unwanted_events_get_nothing(
    endpoint: WebhookEndpoint,
) -> None:
    endpoint.events = ["call.started"]
    endpoint.save()
    assert webhooks.queue_event("call.ended", {}) == []
    endpoint.enabled = False
    endpoint.save()
    assert webhooks.queue_event("call.started", {}) == []


def test_a_name_is_tried_at_each_checked_address_until_one_listens(
    endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    # "localhost" may resolve to ::1 first; the receiver listens on 127.0.0.1 only.
    endpoint.url = f"http://localhost:{receiver.port}/hook"
    endpoint.save()
    (delivery,) = webhooks.queue_event("call.started", {"id": 9})
    deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert receiver.requests[0][0]["host"] == f"localhost:{receiver.port}"


def test_https_targets_must_present_a_certificate_the_system_trusts(
    endpoint: WebhookEndpoint, tmp_path: Any
) -> None:
    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    tls = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    tls.socket = server_context.wrap_socket(tls.socket, server_side=True)
    thread = threading.Thread(target=tls.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint.url = f"https://127.0.0.1:{tls.server_address[1]}/hook"
        endpoint.save()
        (delivery,) = webhooks.queue_event("call.started", {"id": 10})
        deliver_webhook(delivery.pk)
    finally:
        tls.shutdown()
        tls.server_close()
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.status_code is None
    assert "CERTIFICATE_VERIFY_FAILED" in attempt.error
