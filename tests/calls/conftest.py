"""Fixtures of the calls tests: the webhook, trusting a test token issuer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.test import Client

import pytest

from callbot.calls import views
from tests.support.jwt import JwksServer, TestTokenIssuer


@pytest.fixture
def webhook(
    settings: Any, jwks_server: JwksServer, token_issuer: TestTokenIssuer
) -> Iterator[Client]:
    """A client posting to the webhook, with Callbot trusting ``token_issuer``."""
    settings.GRAPH_NOTIFICATION_OPENID_URL = jwks_server.openid_url
    settings.GRAPH_CLIENT_ID = token_issuer.audience
    settings.GRAPH_CA_BUNDLE = ""
    views.reset_notification_authenticator()
    yield Client()
    views.reset_notification_authenticator()
