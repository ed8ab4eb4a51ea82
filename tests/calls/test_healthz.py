"""GET /healthz: a bare status for anyone (load balancers), the parts and their
errors only for an admin or a caller with the health token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import Group
from django.test import Client

import pytest

pytestmark = pytest.mark.django_db

TOKEN = "healthz-token-0123456789abcdef"


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def broker_down(settings: Any) -> Iterator[None]:
    from callbot.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = app.conf.broker_url, app.conf.broker_write_url
    # Nothing listens on port 1. The write URL too: Celery copies the broker URL
    # into it when the app is configured.
    app.conf.broker_url = app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    yield
    app.conf.broker_url, app.conf.broker_write_url = saved


@pytest.fixture
def eager(settings: Any, channel_layer: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True


def test_anyone_gets_a_bare_ok(client: Client, eager: None) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_anyone_gets_a_bare_503_naming_no_backend_when_one_is_down(
    client: Client, channel_layer: Any, broker_down: None
) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
    assert b"127.0.0.1" not in response.content
    assert b"redis" not in response.content.lower()


def test_an_admin_sees_every_part_on_the_embedded_default(
    alice: Any, eager: None
) -> None:
    response = signed_in(alice).get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"] == {
        "ok": True,
        "backend": "InProcessChannelLayer",
    }
    assert body["checks"]["broker"] == {"ok": True, "mode": "in-process"}


def test_an_admin_sees_which_part_is_down(
    alice: Any, channel_layer: Any, broker_down: None
) -> None:
    response = signed_in(alice).get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["ok"] is False
    assert "127.0.0.1:1" in body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_the_admin_group_sees_details_and_other_roles_do_not(
    django_user_model: Any, bob: Any, carol: Any, eager: None
) -> None:
    admin_group, _ = Group.objects.get_or_create(name="Admin")
    dana = django_user_model.objects.create_user("dana", password="dana-pw-1")
    dana.groups.add(admin_group)
    assert "checks" in signed_in(dana).get("/healthz").json()
    for user in (bob, carol):
        assert signed_in(user).get("/healthz").json() == {"status": "ok"}


def test_the_health_token_shows_details_and_nothing_else_does(
    client: Client, settings: Any, eager: None
) -> None:
    settings.HEALTHZ_TOKEN = TOKEN
    details = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert details.json()["checks"]["database"]["ok"] is True
    for header in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN):
        response = client.get("/healthz", headers={"Authorization": header})
        assert response.json() == {"status": "ok"}, header


def test_without_a_configured_token_no_bearer_is_accepted(
    client: Client, settings: Any, eager: None
) -> None:
    settings.HEALTHZ_TOKEN = ""
    for header in ("Bearer ", "Bearer", "Bearer x"):
        response = client.get("/healthz", headers={"Authorization": header})
        assert response.json() == {"status": "ok"}, header


@pytest.mark.needs_redis
def test_healthz_checks_the_real_redis_layer_and_broker(
    client: Client, settings: Any
) -> None:
    import os

    from channels.layers import channel_layers

    from callbot.celery import app

    url = os.environ["REDIS_URL"]
    settings.HEALTHZ_TOKEN = TOKEN
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
        body = client.get(
            "/healthz", headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
    finally:
        channel_layers.backends.clear()
    assert body["status"] == "ok"
    assert body["checks"]["channel_layer"] == {
        "ok": True,
        "backend": "RedisChannelLayer",
    }
    assert body["checks"]["broker"]["mode"] == "broker"
