"""Ringing calls no policy task will decide, and the sweep that decides them.

Two ways a new incoming call's ``handle_call_activity`` task can fail to arrive:

* the broker refused it (Redis away): ``receivers`` writes the call down in
  ``UnsentPolicy`` at once;
* the broker took it and lost it (Redis restarted without persistence while the
  message was queued): nothing knows, so a call still ringing undecided
  ``IVR_POLICY_LOST_AFTER_SECONDS`` after it arrived is taken as lost.

``decide_unsent`` (beat's ``decide_unsent_calls``, every second) applies the call
policy to both, then handles the call activity held because the broker refused
its task (``HeldActivity``: tones, actions finished, the call established or
ended; ``runtime.handle_held``). ``runtime.apply_policy`` decides a call once, under its row lock,
however many tasks and sweeps run it, so a task that was only slow (a backlog)
and the sweep cannot both decide it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from callbot.calls.models import Call
from callbot.calls.states import CallDirection, CallState
from callbot.ivr import runtime
from callbot.ivr.models import HeldActivity, UnsentPolicy
from callbot.ivr.runtime import apply_policy, decided_calls

logger = logging.getLogger(__name__)

# Calls one sweep decides at most, of each kind; the next tick takes the rest.
UNSENT_PER_SWEEP = 50
# Graph stops ringing an unanswered call after about 15 s; a call still
# "incoming" long after that is one whose ending was not heard, not one to
# answer. The window leaves room for a longer-ringing emulator.
LOST_WINDOW = timedelta(seconds=60)
# What ``apply_policy`` returns when it asked Graph for nothing.
_NOTHING_DONE = ("not incoming", "already decided", "no policy")


def decide_unsent(now: datetime | None = None) -> int:
    """Apply the policy to each call kept in ``UnsentPolicy`` and forget it (after
    the policy ran, so a sweep that dies between the two runs it again: a no-op),
    then to each call whose task looks lost. Returns how many were decided."""
    now = now or timezone.now()
    decided = 0
    refused = list(
        UnsentPolicy.objects.order_by("created_at").values_list("call_id", flat=True)[
            :UNSENT_PER_SWEEP
        ]
    )
    for call_id in refused:
        decided += _decide(call_id, now, "whose policy task was not sent")
        UnsentPolicy.objects.filter(call_id=call_id).delete()
    for call_id in lost_call_ids(now):
        decided += _decide(call_id, now, "whose policy task did not arrive")
    handle_held(now)
    return decided


def handle_held(now: datetime | None = None) -> int:
    """Handle the activity held while the broker refused its tasks
    (``HeldActivity``), call by call in the order it was held, after the
    rings above. Returns how many rows were handled."""
    held = HeldActivity.objects.order_by("pk").values_list("call_id", flat=True)
    call_ids = list(dict.fromkeys(held[:UNSENT_PER_SWEEP]))
    return sum(runtime.handle_held(call_id, now) for call_id in call_ids)


def lost_call_ids(now: datetime) -> list[int]:
    """Incoming calls still ringing, arrived between ``LOST_WINDOW`` and
    ``IVR_POLICY_LOST_AFTER_SECONDS`` ago, with no decision asked for, no flow and
    no hand-off: oldest first. A call no policy matches stays in it (the policy
    is asked again each second, in case one was added) until it stops ringing."""
    newest = now - timedelta(seconds=settings.IVR_POLICY_LOST_AFTER_SECONDS)
    return list(
        Call.objects.filter(
            state=CallState.INCOMING,
            direction=CallDirection.INCOMING,
            created_at__lt=newest,
            created_at__gte=now - LOST_WINDOW,
        )
        .exclude(decided_calls())
        .order_by("created_at")
        .values_list("pk", flat=True)[:UNSENT_PER_SWEEP]
    )


def _decide(call_id: int, now: datetime, why: str) -> int:
    outcome = apply_policy(call_id, now)
    if outcome != "no policy":
        logger.info(
            "call %s, %s: %s", call_id, why, outcome, extra={"call_id": call_id}
        )
    return outcome not in _NOTHING_DONE
