"""Which domain announcements become webhook events, and their ``data``.

* ``call.started``: an incoming call's first notification (``call_activity``
  with ``created``) or, for a call the bot placed or a meeting it joined, the
  call becoming established, whichever comes first;
* ``call.ended``: the call became terminated (``call_activity`` ``terminated``);
* ``action.completed`` / ``action.failed``: ``lifecycle.finish`` committed an
  action's final outcome (``action_finished``);
* ``alert.raised``: a new alert row (not a repeat of an open one).

Each has a subject (``call.started:<call id>``...): an endpoint hears of a call's
start once, though a ringing call's notification may be redelivered.

Receivers run after commit in the process that committed (the webhook's request,
a worker): they only store deliveries and enqueue them, and never raise.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import connection
from django.db.models.signals import post_save

from callbot.api.models import WebhookEndpoint, WebhookEvent
from callbot.api.serializers import ActionSerializer, AlertSerializer, CallSerializer
from callbot.api.webhooks import queue_event
from callbot.calls import later
from callbot.calls.models import Action, Alert, Call
from callbot.calls.signals import CallActivity, action_finished, call_activity
from callbot.calls.states import CallState

logger = logging.getLogger(__name__)


def _anyone_listening() -> bool:
    """Whether any endpoint is enabled. Plain SQL, not a queryset: it is asked
    after every batch ingest applies and every action finished (five times per
    answered IVR call), nearly always to answer no, and building the queryset
    cost Django more CPU than the database spent answering it."""
    with connection.cursor() as cursor:
        cursor.execute(_listening_sql(), [True])
        return cursor.fetchone() is not None


@functools.lru_cache(maxsize=1)
def _listening_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(WebhookEndpoint._meta.db_table)
    enabled = quote(WebhookEndpoint._meta.get_field("enabled").column)
    # Only our own quoted names are interpolated.
    return f"SELECT 1 FROM {table} WHERE {enabled} = %s LIMIT 1"  # noqa: S608


def _established(item: CallActivity) -> bool:
    return item.state_changed and item.state == CallState.ESTABLISHED


def on_call_activity(sender: Any, activity: list[CallActivity], **kwargs: Any) -> None:
    wanted = [a for a in activity if a.created or a.terminated or _established(a)]
    if wanted:
        # Nobody waits on it: after a ring the inbox's applier stored meanwhile.
        later.run_or_hold(lambda: _call_events(wanted))


def _call_events(wanted: list[CallActivity]) -> None:
    if not _anyone_listening():
        return
    calls = Call.objects.in_bulk([a.call_id for a in wanted])
    for item in wanted:
        call = calls.get(item.call_id)
        if call is None:
            continue
        data = dict(CallSerializer(call).data)
        if item.created or _established(item):
            queue_event(
                WebhookEvent.CALL_STARTED, data, subject=f"call.started:{call.pk}"
            )
        if item.terminated:
            queue_event(WebhookEvent.CALL_ENDED, data, subject=f"call.ended:{call.pk}")


def on_action_finished(sender: Any, action_id: int, status: str, **kwargs: Any) -> None:
    later.run_or_hold(lambda: _action_event(action_id, status))


def _action_event(action_id: int, status: str) -> None:
    if not _anyone_listening():
        return
    action = Action.objects.select_related("requested_by").filter(pk=action_id).first()
    if action is None:
        return
    event = (
        WebhookEvent.ACTION_COMPLETED
        if status == "completed"
        else WebhookEvent.ACTION_FAILED
    )
    queue_event(
        event, dict(ActionSerializer(action).data), subject=f"action:{action.pk}"
    )


def on_alert_saved(sender: Any, instance: Alert, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    alert_id = instance.pk

    def send() -> None:
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is not None and _anyone_listening():
            queue_event(
                WebhookEvent.ALERT_RAISED,
                dict(AlertSerializer(alert).data),
                subject=f"alert:{alert.pk}",
            )

    # The alert is raised inside its caller's transaction: send once it commits.
    later.on_commit(send)


def connect() -> None:
    call_activity.connect(on_call_activity, dispatch_uid="callbot.api.calls")
    action_finished.connect(on_action_finished, dispatch_uid="callbot.api.actions")
    post_save.connect(on_alert_saved, sender=Alert, dispatch_uid="callbot.api.alerts")
