"""After-commit work no person is waiting on (an alert raised for a failed
action, the API's webhook events), which the inbox's applier may hold until the
batches stored meanwhile are applied.

The applier applies every call's batches one after the other. A ring stored
while it finished another call's ``terminated`` batch waited for that batch's
after-commit work: the failed hold prompt's alert (a read, a transaction of its
own, its event's reads) and the API's check for webhook subscribers, a dozen
round trips to PostgreSQL that a supervisor's ringing row waited behind
(bench/README.md, "Hop by hop"). Inside ``holding`` (the applier's drain) such
work registered with ``on_commit`` is kept, in order, and ``run_held`` runs it
once no store has woken the applier (``inbox._drain_held``), before the rows
whose application asked for it are deleted: a ring stored meanwhile is applied
and published first. Live deltas and task sends are not held: a page, the IVR
and the worker wait on them. Outside ``holding`` (requests, the worker, tests)
the work runs at the commit, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

logger = logging.getLogger(__name__)

_held: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "held_after_commit", default=None
)


def on_commit(work: Callable[[], None]) -> None:
    """Run ``work`` once the current transaction commits (robust: its failure
    is logged and costs the commit's other work nothing), or hold it there if
    the applier is draining."""
    transaction.on_commit(lambda: run_or_hold(work), robust=True)


def run_or_hold(work: Callable[[], None]) -> None:
    """``work`` now, or kept for ``run_held`` inside ``holding``."""
    held = _held.get()
    if held is None:
        work()
    else:
        held.append(work)


@contextmanager
def holding() -> Iterator[None]:
    """Hold this thread's ``run_or_hold`` work for ``run_held``; whatever is
    still held when the block ends runs then (an outage ended the drain)."""
    token = _held.set([])
    try:
        yield
    finally:
        try:
            run_held()
        finally:
            _held.reset(token)


def run_held(stop: Callable[[], bool] | None = None) -> bool:
    """Run the held work in order, each failure logged; before each item ask
    ``stop`` (a store woke the applier) and leave the rest held if it says so.
    True when nothing is left held."""
    held = _held.get()
    while held:
        if stop is not None and stop():
            return False
        work = held.pop(0)
        try:
            work()
        except Exception:
            logger.exception("after-commit work failed")
    return True
