"""Who may read /metrics, and the webhook's counters (refusals by reason, accepted
notifications, ingest time)."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest
from prometheus_client import REGISTRY

from tests.conftest import load_fixture
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import post

pytestmark = pytest.mark.django_db


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("embedded", "token", "address", "authorization", "status"),
    [
        # The embedded default: open to the loopback address, closed to others.
        (True, "", "127.0.0.1", "", 200),
        (True, "", "::1", "", 200),
        (True, "", "192.0.2.7", "", 401),
        # Production: only the bearer token, whatever the address.
        (False, "", "127.0.0.1", "", 401),
        (False, "s3cret", "127.0.0.1", "", 401),
        (False, "s3cret", "192.0.2.7", "Bearer wrong", 401),
        (False, "s3cret", "192.0.2.7", "Bearer s3cret", 200),
        (False, "", "192.0.2.7", "Bearer ", 401),
    ],
)
def test_metrics_are_for_loopback_on_the_embedded_default_else_the_token(
    settings: Any,
    embedded: bool,
    token: str,
    address: str,
    authorization: str,
    status: int,
) -> None:
    settings.EMBEDDED_DEFAULT = embedded
    settings.METRICS_TOKEN = token
    client = Client(REMOTE_ADDR=address)
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("text/plain")
        body = response.content.decode()
        assert "callbot_calls{state=" in body
        assert "callbot_celery_queue_depth{" in body
    else:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_the_webhook_counts_refusals_by_reason_and_accepted_notifications(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    refused = sample("callbot_notifications_refused_total", reason="unauthorized")
    malformed = sample("callbot_notifications_refused_total", reason="bad_request")
    received = sample("callbot_notifications_received_total")
    ingested = sample("callbot_ingest_duration_seconds_count")

    assert (
        post(webhook, load_fixture("incoming_p2p_call.json"), None).status_code == 401
    )
    assert post(webhook, "not json", token_issuer.bearer()).status_code == 400
    batch = load_fixture("incoming_p2p_call.json")
    assert post(webhook, batch, token_issuer.bearer()).status_code == 202

    assert sample("callbot_notifications_refused_total", reason="unauthorized") == (
        refused + 1
    )
    assert sample("callbot_notifications_refused_total", reason="bad_request") == (
        malformed + 1
    )
    assert sample("callbot_notifications_received_total") == received + len(
        batch["value"]
    )
    assert sample("callbot_ingest_duration_seconds_count") == ingested + 1
