"""Callbot wired to a running emulator, for end-to-end tests.

``point_callbot_at`` changes Django settings so the Graph client, msal and the
webhook's JWT validation all talk to the given emulator, and tells the emulator to
deliver brand-new calls to Callbot's webhook on the live server. The caches that
outlive a request (Graph client, notification authenticator) are reset so the new
settings take effect.
"""

from __future__ import annotations

from typing import Any

from tests.support.emulator import RunningEmulator

WEBHOOK_PATH = "/api/calling/callback"


def point_callbot_at(emulator: RunningEmulator, settings: Any, base_url: str) -> str:
    """Configure Callbot (served at ``base_url``) against ``emulator``; returns the
    webhook URL the emulator now posts to."""
    from callbot.graph.factory import (
        reset_graph_client,
        reset_notification_authenticator,
    )

    bot = emulator.config.bot
    settings.GRAPH_TENANT_ID = bot.tenant_id
    settings.GRAPH_CLIENT_ID = bot.client_id
    settings.GRAPH_CLIENT_SECRET = bot.client_secret
    settings.GRAPH_BASE_URL = f"{emulator.url}/v1.0"
    settings.GRAPH_AUTHORITY = emulator.authority
    settings.GRAPH_CA_BUNDLE = str(emulator.ca_path)
    settings.GRAPH_NOTIFICATION_OPENID_URL = (
        f"{emulator.url}/v1/.well-known/OpenIdConfiguration"
    )
    settings.BOT_PUBLIC_URL = base_url
    reset_graph_client()
    reset_notification_authenticator()
    webhook = f"{base_url}{WEBHOOK_PATH}"
    emulator.reset(webhook)
    return webhook


def release_callbot() -> None:
    """Drop the caches built against the emulator (call after the test)."""
    from callbot.graph.factory import (
        reset_graph_client,
        reset_notification_authenticator,
    )

    reset_graph_client()
    reset_notification_authenticator()
