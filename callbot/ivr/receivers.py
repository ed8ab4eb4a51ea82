"""Receivers of ``callbot.calls.signals``: cheap filters that enqueue a task each.

They run inside the webhook's request (after its transaction committed), so they
read no rows and only enqueue.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from callbot.calls.signals import CallActivity
from callbot.calls.states import CallState

# Imported here, when the app registry loads this module, not on the first
# webhook: two first deliveries importing it at once in two threads deadlocked
# on the import lock against Celery's app-finalize lock.
from callbot.ivr.tasks import handle_call_activity

logger = logging.getLogger(__name__)


def is_relevant(item: CallActivity) -> bool:
    """Whether the bot's behaviour cares: a new incoming call, the call answered,
    tones, finished actions or the end. Roster churn alone is not."""
    return (
        (
            item.created
            and item.direction == "incoming"
            and item.state == CallState.INCOMING
        )
        or (item.state_changed and item.state == CallState.ESTABLISHED)
        or bool(item.tones)
        or bool(item.finished_actions)
        or item.terminated
    )


def on_call_activity(sender: Any, activity: list[CallActivity], **kwargs: Any) -> None:
    """Enqueue ``handle_call_activity`` for each relevant call in the batch."""
    for item in activity:
        if not is_relevant(item):
            continue
        try:
            handle_call_activity.delay(dataclasses.asdict(item))
        except Exception:
            # Eager mode runs the task right here: its failure is logged, not
            # raised into ingest (the notification is stored either way).
            logger.exception(
                "IVR could not handle activity of call %s",
                item.call_id,
                extra={"call_id": item.call_id},
            )
