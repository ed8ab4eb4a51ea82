"""The Admin role manages tokens and webhooks in the Django admin: a token's key
is shown once, deleting revokes it, and every delivery attempt is visible."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

import pytest

from callbot.api import webhooks
from callbot.api.models import ApiToken, WebhookAttempt, WebhookEndpoint
from callbot.calls.models import AuditEntry
from tests.api.conftest import make_actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada() -> Client:
    client = Client()
    client.force_login(make_actor("ada"))  # the Admin role, not a superuser
    return client


def test_an_admin_makes_a_token_whose_key_is_shown_once(ada: Client) -> None:
    bob = make_actor("bob")
    response = ada.post(
        "/admin/api/apitoken/add/", {"user": bob.pk, "name": "crm"}, follow=True
    )
    assert response.status_code == 200
    said = " ".join(str(m) for m in get_messages(response.wsgi_request))
    key = re.search(r"cbt_[\w-]{40}", said)
    assert key is not None
    assert said.count(key.group()) == 1
    token = ApiToken.objects.get()
    assert (
        key.group()
        not in ada.get(f"/admin/api/apitoken/{token.pk}/change/").content.decode()
    )
    api = Client(HTTP_AUTHORIZATION=f"Token {key.group()}")
    assert api.get("/api/v1/me/").json()["username"] == "bob"
    ada.post(f"/admin/api/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert api.get("/api/v1/me/").status_code == 401
    assert set(
        AuditEntry.objects.filter(target="bob").values_list("action", flat=True)
    ) >= {"api_token.created", "api_token.revoked"}


def test_an_admin_registers_an_endpoint_and_sees_each_attempt(
    ada: Client, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    response = ada.post(
        "/admin/api/webhookendpoint/add/",
        {
            "url": "http://127.0.0.1:18539/none",
            "description": "CRM",
            "events": ["call.ended", "alert.raised"],
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["call.ended", "alert.raised"]
    assert endpoint.secret.startswith("whsec_")
    (delivery,) = webhooks.queue_event("call.ended", {"id": 1})
    webhooks.attempt_delivery(delivery.pk)  # nobody listens on that port
    attempt = WebhookAttempt.objects.get()
    page = ada.get(f"/admin/api/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert attempt.error[:30] in page.content.decode()
    assert ada.get("/admin/api/webhookdelivery/").status_code == 200


def test_an_admin_rotates_an_endpoints_secret_and_the_old_one_overlaps(
    ada: Client, settings: Any
) -> None:
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 6
    endpoint = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/callbot", events=["call.ended"]
    )
    old = endpoint.secret
    response = ada.post(
        "/admin/api/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    assert response.status_code == 200
    said = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "signed with the new and the old secret" in said

    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    assert endpoint.previous_secret_until is not None
    left = endpoint.previous_secret_until - timezone.now()
    assert timedelta(hours=5, minutes=59) < left <= timedelta(hours=6)
    page = ada.get(f"/admin/api/webhookendpoint/{endpoint.pk}/change/").content
    assert endpoint.secret in page.decode()
    assert old not in page.decode()  # the old secret is not shown again
    entry = AuditEntry.objects.get(action="webhook_secret.rotated")
    assert entry.target == endpoint.url
    assert entry.actor_name == "ada"
