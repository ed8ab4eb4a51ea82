"""Signing out closes that session's live sockets at once (not at their next message).

Connected from ``DashboardConfig.ready``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def session_group(session_key: str) -> str:
    """The channel-layer group of one session's sockets."""
    return f"session.{session_key}"


@receiver(user_logged_out, dispatch_uid="dashboard.close_sockets_on_logout")
def close_sockets_on_logout(
    sender: Any, request: HttpRequest | None, **kwargs: Any
) -> None:
    key = request.session.session_key if request is not None else None
    layer = get_channel_layer()
    if not key or layer is None:
        return
    try:
        async_to_sync(layer.group_send)(session_group(key), {"type": "session.ended"})
    except Exception:
        # The sockets still close at their next message; signing out must not fail.
        logger.exception("could not tell live sockets about a sign-out")
