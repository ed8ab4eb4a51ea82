"""Alerts for supervisors: raising, clearing and the rules that do both.

``raise_alert(kind, call, message)`` is the one way to raise an alert (ingest's
"bot dropped", ``lifecycle.finish``'s failed actions, ``upkeep``'s keepAlive and
silence checks call it); ``evaluate_alerts`` is beat's sweep over the rules that
depend on time (a call ringing too long) and clears what no longer holds. Both
publish an ``alerts.delta`` to the board's group after commit. The thresholds are
``AlertSettings``, one row edited in the admin. Writes only ``Alert`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from callbot.calls import live
from callbot.calls.alertmodels import Alert, AlertKind, AlertSettings
from callbot.calls.models import Call, CallEvent
from callbot.calls.states import CallState

logger = logging.getLogger(__name__)

ALERTS_DELTA_TYPE = "alerts.delta"
# The same news for one call's page: its own alerts raised or cleared.
CALL_ALERTS_TYPE = "call.alerts"
# States of a call that rings for a person to answer it.
RINGING_STATES = (CallState.INCOMING,)
# Kinds that hold while a condition does, and end with the call.
CONDITION_KINDS = (
    AlertKind.RINGING_LONG,
    AlertKind.SILENT_CALL,
    AlertKind.KEEP_ALIVE_FAILED,
)
# Kinds that report one event: shown for ``expire_minutes`` unless dismissed.
EVENT_KINDS = (AlertKind.ACTION_FAILED, AlertKind.BOT_DROPPED)
OPEN_LIMIT = 100


def alert_settings() -> AlertSettings:
    """The one settings row, made with the defaults the first time it is read."""
    row, _ = AlertSettings.objects.get_or_create(pk=1)
    return row


def call_label(call: Call) -> str:
    return (call.subject or call.source_display or f"call {call.pk}")[:255]


def alert_shape(alert: Alert) -> dict[str, Any]:
    """An alert as the board shows it (JSON types only)."""
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "label": AlertKind(alert.kind).label,
        "call_id": alert.call_id,
        "call_label": alert.call_label,
        "message": alert.message,
        "count": alert.count,
        "raised_at": live.iso(alert.raised_at),
        "last_raised_at": live.iso(alert.last_raised_at),
    }


def open_alerts(
    limit: int = OPEN_LIMIT, *, call_id: int | None = None
) -> list[dict[str, Any]]:
    """Open alerts (of one call, with ``call_id``), newest first, in one query."""
    rows = Alert.objects.filter(cleared_at__isnull=True)
    if call_id is not None:
        rows = rows.filter(call_id=call_id)
    return [alert_shape(a) for a in rows[:limit]]


def raise_alert(
    kind: str, call: Call | int | None, message: str, *, now: datetime | None = None
) -> Alert | None:
    """Raise an alert of ``kind`` about ``call`` (a row, an id, or None).

    Idempotent per kind and call: while one is open, raising again updates its
    message, ``last_raised_at`` and ``count`` instead of adding a second. Returns
    the alert, or None when its kind is switched off in the settings (or the call
    does not exist). Raises ``ValueError`` for an unknown kind. The change is
    published to the board after commit. May run inside the caller's transaction.
    """
    kind = AlertKind(kind).value
    if not alert_settings().enabled(kind):
        return None
    now = now or timezone.now()
    if isinstance(call, int):
        call = Call.objects.filter(pk=call).first()
        if call is None:
            return None
    label = call_label(call) if call is not None else ""
    for _ in range(2):
        try:
            with transaction.atomic():
                alert = _raise_once(kind, call, label, message[:2000], now)
            break
        except IntegrityError:
            # Another process raised the same alert between our read and insert:
            # the second pass finds it open and updates it.
            continue
    else:  # pragma: no cover - two lost races in a row
        return None
    shape = alert_shape(alert)
    transaction.on_commit(lambda: publish_alerts(raised=[shape]))
    logger.info("alert %s raised", kind, extra={"call_id": alert.call_id})
    return alert


def _raise_once(
    kind: str, call: Call | None, label: str, message: str, now: datetime
) -> Alert:
    alert = (
        Alert.objects.select_for_update()
        .filter(kind=kind, call=call, cleared_at__isnull=True)
        .first()
    )
    if alert is None:
        return Alert.objects.create(
            kind=kind,
            call=call,
            call_label=label,
            message=message,
            raised_at=now,
            last_raised_at=now,
        )
    alert.message = message or alert.message
    alert.count += 1
    alert.last_raised_at = max(now, alert.raised_at)
    alert.save(update_fields=["message", "count", "last_raised_at"])
    return alert


def clear_alerts(
    kind: str | None = None,
    *,
    call_ids: list[int] | None = None,
    alert_ids: list[int] | None = None,
    reason: str = "resolved",
    now: datetime | None = None,
) -> list[int]:
    """Clear open alerts (of ``kind``, about ``call_ids``, or ``alert_ids``); the
    ids cleared, published to the board after commit."""
    rows = Alert.objects.filter(cleared_at__isnull=True)
    if kind is not None:
        rows = rows.filter(kind=AlertKind(kind).value)
    if call_ids is not None:
        rows = rows.filter(call_id__in=call_ids)
    if alert_ids is not None:
        rows = rows.filter(pk__in=alert_ids)
    return _clear(rows.values_list("pk", flat=True), reason, now)


def dismiss_alert(alert_id: int, who: str) -> bool:
    """A person has seen an alert and takes it off the board; False if it was not
    open."""
    return bool(clear_alerts(alert_ids=[alert_id], reason=who[:150]))


def _clear(ids_query: Any, reason: str, now: datetime | None) -> list[int]:
    ids = list(ids_query[: OPEN_LIMIT * 10])
    if not ids:
        return []
    Alert.objects.filter(pk__in=ids, cleared_at__isnull=True).update(
        cleared_at=now or timezone.now(), cleared_by=reason[:150]
    )
    # Which call pages hear of it.
    calls = dict(Alert.objects.filter(pk__in=ids).values_list("pk", "call_id"))
    transaction.on_commit(lambda: publish_alerts(cleared=ids, cleared_calls=calls))
    return ids


def publish_alerts(
    *,
    raised: list[dict[str, Any]] | None = None,
    cleared: list[int] | None = None,
    cleared_calls: Mapping[int, int | None] | None = None,
) -> None:
    """Tell the board's watchers which alerts were raised or cleared, and each
    call's page its own (``cleared_calls``: alert id -> call id). After commit."""
    live.publish_board(
        {"type": ALERTS_DELTA_TYPE, "raised": raised or [], "cleared": cleared or []}
    )
    pages: dict[int, dict[str, Any]] = {}

    def page(call_id: int) -> dict[str, Any]:
        return pages.setdefault(
            call_id,
            {"type": CALL_ALERTS_TYPE, "call_id": call_id, "raised": [], "cleared": []},
        )

    for shape in raised or []:
        if shape.get("call_id") is not None:
            page(shape["call_id"])["raised"].append(shape)
    for alert_id, call_id in (cleared_calls or {}).items():
        if call_id is not None:
            page(call_id)["cleared"].append(alert_id)
    live.publish_calls(pages)


# --- the rules ------------------------------------------------------------------------


def evaluate_alerts(now: datetime | None = None) -> dict[str, int]:
    """Raise and clear alerts by the rules that depend on time; beat's sweep.

    1. A call ringing (``RINGING_STATES``) for ``ringing_seconds`` raises
       ``ringing_long``; one that stopped ringing clears it.
    2. A silent call's alert clears once a notification arrives after it.
    3. Condition alerts of calls that ended clear.
    4. Event alerts (failed actions, dropped bots) expire after ``expire_minutes``.
    Returns how many alerts each step raised or cleared. A handful of queries
    whatever the number of calls.
    """
    now = now or timezone.now()
    rules = alert_settings()
    found: dict[str, int] = {}
    open_rows = Alert.objects.filter(cleared_at__isnull=True)
    if rules.ringing_enabled:
        since = now - timedelta(seconds=rules.ringing_seconds)
        ringing = (
            Call.objects.filter(state__in=RINGING_STATES, created_at__lte=since)
            .exclude(
                Exists(
                    open_rows.filter(kind=AlertKind.RINGING_LONG, call=OuterRef("pk"))
                )
            )
            .order_by("created_at")[:OPEN_LIMIT]
        )
        for call in ringing:
            waited = int((now - call.created_at).total_seconds())
            raise_alert(
                AlertKind.RINGING_LONG,
                call,
                f"Ringing for {waited} s and nobody has answered "
                f"(threshold {rules.ringing_seconds} s).",
                now=now,
            )
            found["ringing_long"] = found.get("ringing_long", 0) + 1
    stopped = open_rows.filter(kind=AlertKind.RINGING_LONG).exclude(
        call__state__in=RINGING_STATES
    )
    found["rang_out"] = len(
        _clear(stopped.values_list("pk", flat=True), "resolved", now)
    )
    heard = open_rows.filter(kind=AlertKind.SILENT_CALL).filter(
        Exists(
            CallEvent.objects.filter(
                call_id=OuterRef("call_id"), received_at__gt=OuterRef("raised_at")
            )
        )
    )
    found["heard"] = len(_clear(heard.values_list("pk", flat=True), "resolved", now))
    ended = open_rows.filter(kind__in=CONDITION_KINDS).filter(
        Q(call__isnull=True) | Q(call__state=CallState.TERMINATED)
    )
    found["ended"] = len(_clear(ended.values_list("pk", flat=True), "call ended", now))
    stale = open_rows.filter(
        kind__in=EVENT_KINDS,
        last_raised_at__lt=now - timedelta(minutes=rules.expire_minutes),
    )
    found["expired"] = len(_clear(stale.values_list("pk", flat=True), "expired", now))
    return {k: v for k, v in found.items() if v}


def note_silence(call: Call, now: datetime | None = None) -> Alert | None:
    """Raise ``silent_call`` if Teams has sent nothing about ``call`` for
    ``silent_minutes`` (reconciliation's checks do not count; one query)."""
    rules = alert_settings()
    if not rules.silent_enabled or call.state == CallState.TERMINATED:
        return None
    now = now or timezone.now()
    heard = CallEvent.objects.filter(call=call).aggregate(last=Max("received_at"))
    last = heard["last"] or call.created_at
    quiet = now - last
    if quiet < timedelta(minutes=rules.silent_minutes):
        return None
    minutes = int(quiet.total_seconds() // 60)
    return raise_alert(
        AlertKind.SILENT_CALL,
        call,
        f"No notification from Teams for {minutes} min; Graph still knows the call.",
        now=now,
    )


def note_action_failed(call_id: int | None, text: str) -> None:
    """Raise ``action_failed`` for a failed action (``lifecycle.finish``, after
    commit); never raises, so the commit's other hooks still run."""
    try:
        raise_alert(AlertKind.ACTION_FAILED, call_id, text)
    except Exception:
        logger.exception("raising an action_failed alert failed")
