"""Notifications we keep but cannot apply, and telling such a notification from an
outage.

The webhook's promise is that an authenticated notification is never lost: one that
is malformed, holds a value our columns cannot take, or makes applying it fail is
stored here as a ``QuarantinedNotification`` (its JSON made storable, the reason
and the error) while the rest of its batch is applied. Only an outage of our own
database is worth a redelivery; :func:`is_outage` says which errors are one.

Used by ``ingest.py``; must not import it, the services or the dashboard.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.db import InterfaceError, OperationalError

from callbot.calls.models import QuarantinedNotification
from callbot.graph.notifications import MalformedNotification, Notification
from callbot.graph.wire_json import clean_text

logger = logging.getLogger(__name__)

Reason = QuarantinedNotification.Reason

# SQLSTATE classes PostgreSQL reports as OperationalError that are the data's
# fault, not the server's: 54 program limit exceeded (a value too large or too
# deep for an index or the parser). Redelivering would fail the same way.
_DATA_SQLSTATE_CLASSES = ("54",)


def is_outage(exc: BaseException) -> bool:
    """True if ``exc`` is our database failing (unreachable, locked, deadlocked,
    out of disk or connections), so the same notification may succeed later.

    Everything else that applying a notification raises (``DataError``,
    ``IntegrityError``, a ``ValueError`` from a driver, a bug of ours) would fail
    again on every redelivery; such a notification is quarantined instead.
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return not sqlstate.startswith(_DATA_SQLSTATE_CLASSES)


def storable_text(value: str, limit: int | None = None) -> str:
    """``value`` cut to ``limit`` with NUL characters and lone surrogates replaced,
    so any column of any of our databases takes it."""
    return clean_text(value[:limit] if limit else value)


def payload_text(raw: Any) -> str:
    """The notification's JSON as text a text column always takes."""
    try:
        text = json.dumps(raw, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        # Not reachable for what wire_json produced; the notification still counts.
        text = json.dumps({"unserialisable": repr(raw)[:10_000], "error": str(exc)})
    return storable_text(text)


def quarantined(
    item: Notification | MalformedNotification,
    *,
    digest: str,
    position: int,
    reason: str,
    error: str,
    message_id: str,
    tenant_id: str,
    received_at: datetime,
) -> QuarantinedNotification:
    """The row keeping ``item`` (not saved) and a warning in the log."""
    logger.warning(
        "quarantined notification %d (%s): %s",
        position,
        reason,
        error[:300],
        extra={"message_id": message_id, "resource_url": item.resource_url[:200]},
    )
    return QuarantinedNotification(
        digest=digest,
        reason=reason,
        error=storable_text(error, 2000),
        message_id=storable_text(message_id, 128),
        position=position,
        tenant_id=storable_text(tenant_id, 64),
        change_type=storable_text(item.change_type, 16),
        resource_url=storable_text(item.resource_url, 2000),
        payload=payload_text(item.raw),
        received_at=received_at,
    )
