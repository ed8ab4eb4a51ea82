"""Receivers of ``callbot.calls.signals``: cheap filters that enqueue a task each.

They run inside the webhook's request (after its transaction committed), so they
read no rows and only enqueue; a new incoming call whose task the broker refuses
is written down (``UnsentPolicy``) for ``decide_unsent_calls`` to decide.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.db import DatabaseError

from callbot.calls.signals import CallActivity
from callbot.calls.states import CallState
from callbot.ivr.models import UnsentPolicy

# Imported here, when the app registry loads this module, not on the first
# webhook: two first deliveries importing it at once in two threads deadlocked
# on the import lock against Celery's app-finalize lock.
from callbot.ivr.tasks import handle_call_activity

logger = logging.getLogger(__name__)


def is_new_incoming(item: CallActivity) -> bool:
    """Whether the call policy is to decide the call (a new ringing call)."""
    return (
        item.created
        and item.direction == "incoming"
        and item.state == CallState.INCOMING
    )


def is_relevant(item: CallActivity) -> bool:
    """Whether the bot's behaviour cares: a new incoming call, the call answered,
    tones, finished actions or the end. Roster churn alone is not."""
    return (
        is_new_incoming(item)
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
            if (
                is_new_incoming(item)
                and not handle_call_activity.app.conf.task_always_eager
            ):
                _write_down_unsent(item.call_id)


def _write_down_unsent(call_id: int) -> None:
    """The broker refused a ringing call's policy task: keep the call for
    ``decide_unsent_calls``. Tones and other activity are not kept (the IVR's
    collect timeout moves a caller on)."""
    try:
        UnsentPolicy.objects.get_or_create(call_id=call_id)
    except DatabaseError:
        logger.exception(
            "could not keep call %s for its policy", call_id, extra={"call_id": call_id}
        )
