"""Send Celery tasks by name, after the transaction that asked for them commits.

The domain asks for work by the task's registered name (``PERFORM_ACTION``...)
rather than importing the task modules, so the modules that write state never
import the tasks that call them. A task whose message cannot be sent (the broker
is down) is logged; the rows it would work on stay as they are, and the sweeps
(``requeue_stale_actions``) send it again later.

A worker's IVR task (the call policy deciding a ringing call, a flow's step)
performs the actions it asks for itself, right after the commit, instead
(``performing_here``): a message through the broker to another worker thread
cost more time and CPU than the request to Graph, and a step's actions, done in
order by one thread, no longer wait for one another across threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DatabaseError, transaction

from celery import current_app

from callbot.calls import lifecycle
from callbot.calls.models import Action

logger = logging.getLogger(__name__)

# Task names (each task's explicit ``name=``), as queued messages carry them.
PERFORM_ACTION = "callbot.calls.perform_action"
FETCH_RECORDING = "callbot.calls.fetch_recording"
SEND_KEEP_ALIVE = "callbot.calls.send_keep_alive"
RECONCILE_SILENT_CALLS = "callbot.calls.reconcile_silent_calls"

# Who performs the actions kept inside ``performing_here``; None outside one.
_performer: ContextVar[Callable[[Action], None] | None] = ContextVar(
    "action_performer", default=None
)


def send(name: str, *args: Any, countdown: float | None = None) -> bool:
    """Queue the task now (to run ``countdown`` seconds from now, if given);
    False (and logged) if the broker would not take it."""
    try:
        if countdown is None:
            current_app.tasks[name].delay(*args)
        else:
            current_app.tasks[name].apply_async(args, countdown=countdown)
    except Exception:
        logger.exception("could not enqueue %s", name, extra={"task": name})
        return False
    return True


def send_on_commit(name: str, *args: Any) -> None:
    """Queue the task once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send(name, *args))


def eager() -> bool:
    """Whether a task sent now runs in this thread (the embedded default's
    in-process tasks, tests) instead of on a worker."""
    return bool(current_app.conf.task_always_eager)


def keeping() -> bool:
    """Whether an action queued now is to be performed here (``performing_here``)."""
    return _performer.get() is not None


def perform_on_commit(action: Action) -> None:
    """Have ``performing_here``'s performer attempt ``action`` as soon as the
    transaction commits, before the callbacks registered after this one (the
    live push). Inside ``performing_here`` only."""
    perform = _performer.get()
    if perform is None:
        raise RuntimeError("perform_on_commit outside performing_here")
    transaction.on_commit(lambda: perform(action))


@contextmanager
def performing_here(perform: Callable[[Action], None]) -> Iterator[bool]:
    """Have ``perform`` attempt each action ``services.request_action`` queues in
    the block, in this thread right after its commit (``tasks.perform_kept``),
    instead of enqueueing it, stored already claimed for that attempt
    (``lifecycle.claim_new``; a step's action still waits for an earlier queued
    action of its call, ``tasks.perform_kept``). An action whose process dies first is
    sent again by ``requeue_stale_actions`` (once its claim, if any, lapses).
    ``perform`` must not raise: it hands what it cannot do to the broker.

    Must start outside any transaction (a commit after the block would perform
    nothing); inside one, actions are enqueued as usual and the block is given
    False.
    """
    if transaction.get_connection().in_atomic_block:
        yield False
        return
    token = _performer.set(perform)
    try:
        yield True
    finally:
        _performer.reset(token)


def hand_over(action: Action) -> None:
    """Give a claimed action back (its claim lifted) and enqueue it."""
    try:
        lifecycle.release_action(action.pk)
    except DatabaseError:
        # The message's attempt waits for the claim to lapse instead.
        logger.exception("could not give back action %s", action.pk)
    send(PERFORM_ACTION, action.pk)
