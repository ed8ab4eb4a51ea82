"""Keeping calls true to Graph: keepAlive, reconciliation of silent calls, stale
actions, and the recordings Graph discards soon after a call.

The beat tasks in ``tasks.py`` call these; each one reads or writes a little and
returns, and none holds a lock across a Graph request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from callbot.calls import alerts
from callbot.calls.alertmodels import AlertKind
from callbot.calls.ingest import end_call_locally
from callbot.calls.models import Action, Call, Recording
from callbot.calls.states import CONNECTED_STATES, ActionStatus, CallState
from callbot.graph.client import GraphClient
from callbot.graph.errors import GraphError, GraphNotFoundError
from callbot.graph.factory import get_graph_client

logger = logging.getLogger(__name__)


# --- keepAlive ----------------------------------------------------------------------


def calls_due_keep_alive(now: datetime | None = None) -> list[int]:
    """Connected calls not kept alive for ``KEEP_ALIVE_INTERVAL_SECONDS``."""
    due = (now or timezone.now()) - timedelta(
        seconds=settings.KEEP_ALIVE_INTERVAL_SECONDS
    )
    return list(
        Call.objects.filter(state__in=CONNECTED_STATES)
        .exclude(last_keep_alive_at__gte=due)
        .values_list("pk", flat=True)
    )


def keep_alive(call_id: int) -> str:
    """POST keepAlive for one connected call; a 404 means Graph ended it: close it
    here. Returns ``kept``, ``gone`` or ``skipped``; other Graph errors raise
    after raising a ``keep_alive_failed`` alert (cleared by the next success)."""
    call = Call.objects.filter(pk=call_id, state__in=CONNECTED_STATES).first()
    if call is None:
        return "skipped"
    try:
        known = _graph_still_knows(
            call, lambda client: client.keep_alive(call.graph_id)
        )
    except GraphError as exc:
        # Graph ends a call 45 minutes after its last keepAlive: a person should
        # know while there is time, even if the task's retry succeeds later.
        alerts.raise_alert(
            AlertKind.KEEP_ALIVE_FAILED, call, f"keepAlive failed: {exc}"
        )
        raise
    if not known:
        return "gone"
    Call.objects.filter(pk=call_id).update(last_keep_alive_at=timezone.now())
    alerts.clear_alerts(AlertKind.KEEP_ALIVE_FAILED, call_ids=[call_id])
    return "kept"


def _graph_still_knows(call: Call, ask: Callable[[GraphClient], object]) -> bool:
    """Ask Graph about a call; a 404 means Graph ended it: close it here (False)."""
    try:
        ask(get_graph_client().for_tenant(call.tenant_id or None))
    except GraphNotFoundError:
        close_lost_call(call.pk)
        return False
    return True


# --- reconciliation -----------------------------------------------------------------


def silent_call_ids(
    now: datetime | None = None, silence_seconds: float | None = None
) -> list[int]:
    """Live calls with no notification (nor a check) for ``silence_seconds``
    (``RECONCILE_SILENCE_SECONDS`` by default; 0 for every live call)."""
    now = now or timezone.now()
    if silence_seconds is None:
        silence_seconds = settings.RECONCILE_SILENCE_SECONDS
    quiet = now - timedelta(seconds=silence_seconds)
    return list(
        Call.objects.exclude(state=CallState.TERMINATED)
        .filter(last_notification_at__lt=quiet)
        .values_list("pk", flat=True)
    )


def reconcile_call(call_id: int) -> str:
    """GET a silent call from Graph; close it here if Graph no longer knows it.

    Returns what was found: ``gone`` (closed here), ``alive`` (noted as checked, so
    it is not asked about again until it falls silent anew) or ``skipped``.
    """
    call = Call.objects.filter(pk=call_id).exclude(state=CallState.TERMINATED).first()
    if call is None:
        return "skipped"
    if not _graph_still_knows(call, lambda client: client.get_call(call.graph_id)):
        return "gone"
    # Graph knows the call but has told us nothing for long: worth a look. Checked
    # before the check below resets the silence clock.
    alerts.note_silence(call)
    Call.objects.filter(pk=call.pk).update(last_notification_at=timezone.now())
    return "alive"


def close_lost_call(call_id: int) -> None:
    """Graph no longer knows the call: end it here, and everyone in it."""
    end_call_locally(call_id, "Graph no longer knows this call.")


# --- stale actions --------------------------------------------------------------------


def stale_action_ids(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Actions left queued for ``ACTION_REQUEUE_AFTER_SECONDS``: the broker was down
    at enqueue time, or a retry was left for the sweep."""
    stale = (now or timezone.now()) - timedelta(
        seconds=settings.ACTION_REQUEUE_AFTER_SECONDS
    )
    return list(
        Action.objects.filter(
            status=ActionStatus.QUEUED, updated_at__lt=stale
        ).values_list("pk", flat=True)[:limit]
    )


# --- recordings -----------------------------------------------------------------------


def fetch_recording(action_id: int, location: str, access_token: str) -> str:
    """Download a finished ``recordResponse`` and keep it once per action.

    Returns ``kept``, ``had`` (already kept), ``gone`` (Graph answered 404) or
    ``skipped`` (no such action). Other Graph errors raise, for the task to retry.
    """
    action = Action.objects.filter(pk=action_id).select_related("call").first()
    if action is None:
        return "skipped"
    if Recording.objects.filter(action_id=action_id).exists():
        return "had"
    tenant = action.call.tenant_id if action.call is not None else ""
    client = get_graph_client().for_tenant(tenant or None)
    try:
        audio = client.download_recording(location, access_token)
    except GraphNotFoundError:
        logger.warning("recording of action %s is gone", action_id)
        return "gone"
    return "kept" if store_recording(action, audio) is not None else "had"


def store_recording(action: Action, audio: bytes) -> Recording | None:
    """Keep a recording's audio once per action; None if already kept."""
    recording = Recording(action=action, call_id=action.call_id, size=len(audio))
    try:
        with transaction.atomic():
            recording.audio.save(
                f"action-{action.pk}.wav", ContentFile(audio), save=True
            )
    except IntegrityError:
        return None  # a redelivered task lost the race; the first copy stands
    return recording
