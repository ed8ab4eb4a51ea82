"""Pytest fixtures for notification-token tests; load with
``pytest_plugins = ["tests.support.jwt_fixtures"]``.

``token_issuer`` mints tokens, ``jwks_server`` serves its keys over real HTTP, and
``notification_auth_config`` points a ``NotificationAuthenticator`` at that server
with the issuer's audience and both accepted issuers. All function-scoped; the RSA
keys behind them are pooled per process, so each costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callbot.graph.notification_auth import (
    NotificationAuthConfig,
    NotificationAuthenticator,
)
from tests.support.jwt import (
    BOT_FRAMEWORK_ISSUER,
    GRAPH_ISSUER,
    JwksServer,
    TestTokenIssuer,
)


@pytest.fixture
def token_issuer() -> TestTokenIssuer:
    """Mints tokens for the emulator's app id and tenant, signed with a fresh kid."""
    return TestTokenIssuer()


@pytest.fixture
def jwks_server(token_issuer: TestTokenIssuer) -> Iterator[JwksServer]:
    """``token_issuer``'s OpenID document and JWKS on http://127.0.0.1:<port>."""
    with JwksServer(token_issuer) as server:
        yield server


@pytest.fixture
def notification_auth_config(
    jwks_server: JwksServer, token_issuer: TestTokenIssuer
) -> NotificationAuthConfig:
    """A config that accepts ``token_issuer``'s tokens via ``jwks_server``.

    A short timeout keeps "server down" tests fast; the refetch interval and TTL are
    the production defaults, so rate-limit tests see the real behaviour.
    """
    return NotificationAuthConfig(
        openid_url=jwks_server.openid_url,
        audience=token_issuer.audience,
        issuers=(BOT_FRAMEWORK_ISSUER, GRAPH_ISSUER),
        timeout_seconds=2.0,
    )


@pytest.fixture
def notification_authenticator(
    notification_auth_config: NotificationAuthConfig,
) -> NotificationAuthenticator:
    """A fresh authenticator (empty key cache) for ``notification_auth_config``."""
    return NotificationAuthenticator(notification_auth_config)
