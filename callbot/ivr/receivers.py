"""Receivers of ``callbot.calls.signals``: cheap filters that enqueue a task each.

They run inside the webhook's request (after its transaction committed), so they
read no rows and only enqueue. Activity whose task the broker refuses (Redis
away) is written down instead, for beat's ``decide_unsent_calls`` to handle once
the broker is back: a new incoming call as ``UnsentPolicy``, anything else
(tones, actions finished, the call established or ended) as ``HeldActivity``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from django.db import DatabaseError, transaction

from callbot.calls.signals import CallActivity
from callbot.calls.states import CallState
from callbot.ivr.models import HeldActivity, IvrSession, UnsentPolicy
from callbot.ivr.runtime import describe_activity

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
        message = dataclasses.asdict(item)
        try:
            handle_call_activity.delay(message)
        except Exception as exc:
            if handle_call_activity.app.conf.task_always_eager:
                # Eager mode runs the task right here: its failure is logged,
                # not raised into ingest (the notification is stored either way).
                logger.exception(
                    "IVR could not handle activity of call %s",
                    item.call_id,
                    extra={"call_id": item.call_id},
                )
            elif is_new_incoming(item):
                _write_down_unsent(item.call_id, exc)
            else:
                _hold(item.call_id, message, exc)


def _write_down_unsent(call_id: int, exc: Exception) -> None:
    """The broker refused a ringing call's policy task: keep the call for
    ``decide_unsent_calls``."""
    try:
        UnsentPolicy.objects.get_or_create(call_id=call_id)
    except DatabaseError:
        logger.exception(
            "could not keep call %s for its policy", call_id, extra={"call_id": call_id}
        )
        return
    logger.warning(
        "IVR activity of call %s (a new ringing call) held: the broker refused "
        "its task (%s); it will be handled when the broker is back",
        call_id,
        exc,
        extra={"call_id": call_id},
    )


def _hold(call_id: int, message: dict[str, Any], exc: Exception) -> None:
    """The broker refused the task of other activity: hold it for
    ``decide_unsent_calls``, and mark the call's running session so that what
    moves it next handles the held activity first."""
    try:
        with transaction.atomic():
            IvrSession.objects.filter(
                call_id=call_id, status=IvrSession.Status.RUNNING, held=False
            ).update(held=True)
            HeldActivity.objects.create(call_id=call_id, activity=message)
    except DatabaseError:
        logger.exception(
            "IVR activity of call %s lost: the broker refused its task and it "
            "could not be held",
            call_id,
            extra={"call_id": call_id},
        )
        return
    logger.warning(
        "IVR activity of call %s (%s) held: the broker refused its task (%s); "
        "it will be handled when the broker is back",
        call_id,
        describe_activity(message),
        exc,
        extra={"call_id": call_id},
    )
