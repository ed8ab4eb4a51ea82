"""Celery tasks of the API: webhook deliveries. Thin: ``webhooks.py`` does the work."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from callbot.api import webhooks


@shared_task(name=webhooks.DELIVER_WEBHOOK, bind=True, acks_late=True)
def deliver_webhook(self: Any, delivery_id: int) -> None:
    """Make the delivery's next attempt; after a failure, send this task again
    with the backoff as its countdown (``send_due_webhooks`` also finds it when
    due: eagerly run tasks ignore countdowns, and a message may be lost)."""
    wait = webhooks.attempt_delivery(delivery_id)
    if wait is not None and not self.request.is_eager:
        self.apply_async(args=[delivery_id], countdown=wait)


@shared_task(name="callbot.api.send_due_webhooks")
def send_due_webhooks() -> int:
    """Beat's sweep: attempt every delivery whose retry is due; how many."""
    due = webhooks.due_deliveries()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)
