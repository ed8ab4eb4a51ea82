"""A redelivered batch: the after-commit work its first delivery may have lost.

A webhook that dies between its commit and its answer takes its after-commit work
(the call activity, recording downloads) with it, and the platform's redelivery
of the batch is all duplicates, which ingest applies no more. ``replay`` registers
again what the calls those duplicates name still wait on.
"""

from __future__ import annotations

from callbot.calls.callstate import operation_action
from callbot.calls.callwork import CallWork
from callbot.calls.models import Action, Recording
from callbot.calls.states import ActionStatus, CallDirection, CallState
from callbot.graph.notifications import Notification, ResourceKind

# What decides an incoming call; the bot's policy leaves a call with one alone.
_DECISIONS = (Action.Kind.ANSWER, Action.Kind.REJECT, Action.Kind.REDIRECT)


def replay(work: dict[str, CallWork], redelivered: list[Notification]) -> set[int]:
    """Register again what the first delivery of ``redelivered`` registered after
    its commit and the calls still wait on; returns the calls to announce as new.

    A webhook that dies between its commit and its answer takes its after-commit
    work with it, and the platform's redelivery is all duplicates. So:

    * a call still ringing (``incoming``) with no answer, reject or redirect
      requested is announced as created again, for the bot's policy to decide it
      (``apply_policy`` leaves a decided call alone); tones and state changes are
      not replayed, so nothing is applied twice;
    * a completed ``recordResponse`` whose recording is not stored is queued for
      fetching again, with the token of the redelivered notification.
    """
    if not redelivered:
        return set()
    for n in redelivered:
        if n.kind is ResourceKind.OPERATION and n.call_key in work:
            _refetch_recording(work[n.call_key], n)
    ringing = {
        work[n.call_key].call.pk
        for n in redelivered
        if n.call_key in work
        and work[n.call_key].call.state == CallState.INCOMING
        and work[n.call_key].call.direction == CallDirection.INCOMING
    }
    if not ringing:
        return set()
    decided = Action.objects.filter(call_id__in=ringing, kind__in=_DECISIONS)
    return ringing - set(decided.values_list("call_id", flat=True))


def _refetch_recording(item: CallWork, n: Notification) -> None:
    """A redelivered operation notification: queue its recording for fetching
    again if the action it completed has none stored yet.

    The first delivery queued the fetch after its commit; a webhook that died
    between that commit and its answer took the task with it, and the token is
    stored nowhere but in the notification (``fetch_recording`` keeps one copy).
    """
    op = n.operation
    if (
        op is None
        or op.status != ActionStatus.COMPLETED
        or not op.recording_location
        or not op.recording_access_token
    ):
        return
    action = operation_action(item, n)
    if (
        action is None
        or action.status != ActionStatus.COMPLETED
        or Recording.objects.filter(action=action).exists()
    ):
        return
    item.recordings.append(
        (action.pk, op.recording_location, op.recording_access_token)
    )
