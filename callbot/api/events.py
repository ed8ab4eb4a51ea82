"""Which domain announcements become webhook events, and their ``data``.

* ``call.started``: ingest's first notification of a call (``call_activity``
  with ``created``), incoming or placed;
* ``call.ended``: the call became terminated (``call_activity`` ``terminated``);
* ``action.completed`` / ``action.failed``: ``lifecycle.finish`` committed an
  action's final outcome (``action_finished``);
* ``alert.raised``: a new alert row (not a repeat of an open one).

Receivers run after commit in the process that committed (the webhook's request,
a worker): they only store deliveries and enqueue them, and never raise.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from callbot.api.models import WebhookEndpoint, WebhookEvent
from callbot.api.serializers import ActionSerializer, AlertSerializer, CallSerializer
from callbot.api.webhooks import queue_event
from callbot.calls.models import Action, Alert, Call
from callbot.calls.signals import CallActivity, action_finished, call_activity

logger = logging.getLogger(__name__)


def _anyone_listening() -> bool:
    return WebhookEndpoint.objects.filter(enabled=True).exists()


def on_call_activity(sender: Any, activity: list[CallActivity], **kwargs: Any) -> None:
    wanted = [a for a in activity if a.created or a.terminated]
    if not wanted or not _anyone_listening():
        return
    calls = Call.objects.in_bulk([a.call_id for a in wanted])
    for item in wanted:
        call = calls.get(item.call_id)
        if call is None:
            continue
        data = CallSerializer(call).data
        if item.created:
            queue_event(WebhookEvent.CALL_STARTED, dict(data))
        if item.terminated:
            queue_event(WebhookEvent.CALL_ENDED, dict(data))


def on_action_finished(sender: Any, action_id: int, status: str, **kwargs: Any) -> None:
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
    queue_event(event, dict(ActionSerializer(action).data))


def on_alert_saved(sender: Any, instance: Alert, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    alert_id = instance.pk

    def send() -> None:
        alert = Alert.objects.filter(pk=alert_id).first()
        if alert is not None and _anyone_listening():
            queue_event(WebhookEvent.ALERT_RAISED, dict(AlertSerializer(alert).data))

    # The alert is raised inside its caller's transaction: send once it commits.
    transaction.on_commit(send, robust=True)


def connect() -> None:
    call_activity.connect(on_call_activity, dispatch_uid="callbot.api.calls")
    action_finished.connect(on_action_finished, dispatch_uid="callbot.api.actions")
    post_save.connect(on_alert_saved, sender=Alert, dispatch_uid="callbot.api.alerts")
