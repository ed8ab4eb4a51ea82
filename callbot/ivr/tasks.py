"""Celery tasks of the bot's behaviour; thin wrappers over ``callbot.ivr.runtime``."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import shared_task

from callbot.calls import enqueue
from callbot.calls.tasks import perform_kept
from callbot.ivr import runtime, supervisors, unsent


@shared_task(name="callbot.ivr.handle_call_activity", acks_late=True, bind=True)
def handle_call_activity(self: Any, activity: dict[str, Any]) -> None:
    """Apply the call policy to a new incoming call and move its IVR session.

    ``activity`` is a ``CallActivity`` as a dict (tones are not stored elsewhere in
    order, so they travel in the message). Idempotent for the policy (a decided call
    is left alone); tones of a redelivered message may be applied twice.

    On a worker, the actions the policy and the session's step ask for are
    performed here once committed (``enqueue.performing_here``), in order, not
    sent through the broker to other worker threads: Graph ends a call nobody
    answered after about 15 s, the message, its delivery and the claim cost
    more time than the request itself, and a step's second action waited for
    its first across threads. Each is stored claimed, so its attempt needs no
    claim of its own.
    """
    # In-process tasks (the embedded default): performed here as well, what
    # must wait left for the sweep as an eager ``perform_action`` leaves it.
    performer = partial(perform_kept, broker=False) if self.request.is_eager else None
    with enqueue.performing_here(performer or perform_kept):
        _handle(activity)


def _handle(activity: dict[str, Any]) -> None:
    call_id = int(activity["call_id"])
    if activity.get("created") and activity.get("state") == "incoming":
        runtime.apply_policy(call_id)
    runtime.handle_activity(
        call_id,
        state=str(activity.get("state", "")),
        state_changed=bool(activity.get("state_changed")),
        tones=tuple(activity.get("tones") or ()),
        finished_actions=[tuple(a) for a in activity.get("finished_actions") or ()],
        terminated=bool(activity.get("terminated")),
    )


@shared_task(name="callbot.ivr.decide_unsent_calls", acks_late=True, bind=True)
def decide_unsent_calls(self: Any) -> int:
    """Apply the call policy to the ringing calls whose ``handle_call_activity``
    the broker refused or lost (``unsent``; beat, every second), performing the
    decision here as that task would, then handle the other activity whose task
    the broker refused (``HeldActivity``). Returns how many calls were decided."""
    if self.request.is_eager:
        return unsent.decide_unsent()
    with enqueue.performing_here(perform_kept):
        return unsent.decide_unsent()


@shared_task(name="callbot.ivr.sweep_timeouts", acks_late=True)
def sweep_timeouts() -> int:
    """Take the timeout branch of every collect step whose deadline passed, and
    move every caller queued for the supervisors past its wait on to ``next``
    (beat, every second). Returns how many sessions moved."""
    return runtime.sweep_timeouts()


@shared_task(name="callbot.ivr.sweep_handoffs", acks_late=True)
def sweep_handoffs() -> int:
    """Apply the fallback of every call policy hand-off whose wait is over and that
    no supervisor decided (beat, every second). Returns how many fell back."""
    return supervisors.sweep_handoffs()
