"""Send Celery tasks by name, after the transaction that asked for them commits.

The domain asks for work by the task's registered name (``PERFORM_ACTION``...)
rather than importing the task modules, so the modules that write state never
import the tasks that call them. A task whose message cannot be sent (the broker
is down) is logged; the rows it would work on stay as they are, and the sweeps
(``requeue_stale_actions``) send it again later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from celery import current_app

logger = logging.getLogger(__name__)

# Task names (each task's explicit ``name=``), as queued messages carry them.
PERFORM_ACTION = "callbot.calls.perform_action"
FETCH_RECORDING = "callbot.calls.fetch_recording"
SEND_KEEP_ALIVE = "callbot.calls.send_keep_alive"
RECONCILE_SILENT_CALLS = "callbot.calls.reconcile_silent_calls"


def send(name: str, *args: Any) -> bool:
    """Queue the task now; False (and logged) if the broker would not take it."""
    try:
        current_app.tasks[name].delay(*args)
    except Exception:
        logger.exception("could not enqueue %s", name, extra={"task": name})
        return False
    return True


def send_on_commit(name: str, *args: Any) -> None:
    """Queue the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send(name, *args))
