"""GET /healthz reports the database, the channel layer and the broker."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_every_part_on_the_embedded_default(
    client: Client, channel_layer: Any, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"] == {
        "ok": True,
        "backend": "InProcessChannelLayer",
    }
    assert body["checks"]["broker"] == {"ok": True, "mode": "in-process"}


def test_healthz_says_503_when_the_broker_is_down(
    client: Client, channel_layer: Any, settings: Any
) -> None:
    from callbot.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.needs_redis
def test_healthz_checks_the_real_redis_layer_and_broker(
    client: Client, settings: Any
) -> None:
    import os

    from channels.layers import channel_layers

    from callbot.celery import app

    url = os.environ["REDIS_URL"]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [url]},
        }
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    channel_layers.backends.clear()
    app.conf.broker_url = url
    try:
        body = client.get("/healthz").json()
    finally:
        channel_layers.backends.clear()
    assert body["status"] == "ok"
    assert body["checks"]["channel_layer"] == {
        "ok": True,
        "backend": "RedisChannelLayer",
    }
    assert body["checks"]["broker"]["mode"] == "broker"
