"""The worker's side of an Action: claim, lease, sent, and the one way to finish.

An Action moves ``queued`` → ``sent`` → ``completed``/``failed``:

* ``queued``: stored, its task enqueued; a worker claims it for one attempt with a
  lease (``claimed_until``) and gives it back if the attempt must be retried;
* ``sent``: Graph accepted it and the outcome comes later, by an operation
  notification (``playPrompt``, ``invite``…) or by the call's own state (``answer``
  completes when the call is established: ``kinds.settled_status``);
* ``completed``/``failed``: final, with Graph's ``resultInfo`` or error.

``finish`` is the only code that sets a final outcome's fields; ingest (which
settles actions from notifications inside its own transaction) uses it too.
Every move bumps the call's version and is announced after commit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet, Subquery
from django.utils import timezone

from callbot.calls import (
    alerts,
    audit,
    deltas,
    kinds,
    later,
    live,
    lockedrows,
    performrows,
)
from callbot.calls.models import Action, Call
from callbot.calls.signals import action_finished
from callbot.calls.states import (
    FINAL_ACTION_STATUSES,
    ActionStatus,
    CallState,
    can_move_action,
)
from callbot.graph.resources import CallResource, ResultInfo, normalise_id
from callbot.observability import metrics

# The fields ``finish`` sets: save them together (``update_fields``).
FINISH_FIELDS = (
    "status",
    "completed_at",
    "sent_at",
    "claimed_until",
    "result_code",
    "result_subcode",
    "result_message",
    "error_code",
    "operation_id",
    "operation_key",
    "updated_at",
)
# The fields ``record_sent`` sets (the call, when it links a call Graph created).
SENT_FIELDS = (
    "status",
    "sent_at",
    "claimed_until",
    "operation_id",
    "operation_key",
    "call",
    "updated_at",
)


def finish(
    action: Action,
    status: str,
    *,
    now: datetime,
    result_code: int | None = None,
    result_subcode: int | None = None,
    message: str = "",
    error_code: str = "",
    operation_id: str = "",
) -> bool:
    """Set a final outcome on ``action`` (not saved); False if it is final already.

    The caller holds the action's row lock and saves ``FINISH_FIELDS`` in the
    same transaction, in which the outcome is audited (``audit.record_outcome``,
    linked to the request; the chain's lock is taken last); ``action_finished``
    is sent after commit. A final
    action has a ``completed_at``, a ``sent_at`` (Graph had it, or it never will),
    no lease, and the result Graph gave; an operation id is kept once known.
    Raises ``ValueError`` for a status that is not final (``record_sent`` moves
    an action to ``sent``).
    """
    if status not in FINAL_ACTION_STATUSES:
        raise ValueError(f"finish sets a final status, not {status!r}")
    if not can_move_action(action.status, status):
        return False
    action.status = status
    action.completed_at = now
    action.sent_at = action.sent_at or now
    action.claimed_until = None
    action.result_code = result_code
    action.result_subcode = result_subcode
    action.result_message = message[:2000]
    action.error_code = error_code[:64]
    action.updated_at = now
    if operation_id and not action.operation_id:
        _set_operation(action, operation_id)
    audit.record_outcome(action)
    transaction.on_commit(
        functools.partial(metrics.action_finished, action.kind, status)
    )
    if status == ActionStatus.FAILED:
        _alert_failure(action)
    finished = {
        "action_id": action.pk,
        "kind": action.kind,
        "status": status,
        "call_id": action.call_id,
    }
    transaction.on_commit(
        lambda: action_finished.send_robust(sender=Action, **finished), robust=True
    )
    return True


def operation_words(status: str, info: ResultInfo | None) -> str:
    """An operation's outcome message: Graph's ``resultInfo`` message, or, when
    it gave none (``resultInfo: null`` on a completed mute, contract §5), the
    status it reported, so that no outcome is audited without words."""
    if info is not None and info.message:
        return info.message
    return f"Operation {status}."


def _alert_failure(action: Action) -> None:
    """Raise ``action_failed`` once the failure is committed (robust: an alert that
    cannot be raised must not cost the commit's other hooks)."""
    what = action.get_kind_display()
    if action.target:
        what = f"{what} → {action.target}"
    text = f"{what}: {live.action_message(action)}"
    call_id = action.call_id
    later.on_commit(lambda: alerts.note_action_failed(call_id, text))


def _set_operation(action: Action, operation_id: str) -> None:
    action.operation_id = operation_id[:64]
    action.operation_key = normalise_id(operation_id)[:64]


# --- claiming -----------------------------------------------------------------------


def claim_action(
    action_id: int, lease_seconds: float, *, only_if: Q | None = None
) -> Action | None:
    """Take a queued action for one attempt; None if it is not ours to perform.

    A guarded update: the action must still be ``queued`` and not held by another
    worker (``claimed_until`` passed), and meet ``only_if`` when given (checked in
    the same statement). ``attempts`` counts the claims, so a value above one
    tells the task an earlier attempt may have reached Graph.
    """
    now = timezone.now()
    taken = Action.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        only_if or Q(),
        pk=action_id,
        status=ActionStatus.QUEUED,
    ).update(
        attempts=F("attempts") + 1,
        claimed_until=now + timedelta(seconds=lease_seconds),
        updated_at=now,
    )
    if not taken:
        return None
    # The requester too: the attempt names them in its log context before the
    # Graph request (a user's action would otherwise read them on its own).
    return Action.objects.select_related("call", "participant", "requested_by").get(
        pk=action_id
    )


def claim_new(action: Action, lease_seconds: float) -> None:
    """Claim an action not yet stored, for the first attempt of the process that
    queues it (``enqueue.performing_here``; its order behind an earlier action of
    the call is checked before that attempt): it is inserted already taken, as
    ``claim_action`` would leave it, without that update and the read after it.
    Should the process die before the attempt, the lease lapses and
    ``requeue_stale_actions`` sends the action again."""
    action.attempts = 1
    action.claimed_until = timezone.now() + timedelta(seconds=lease_seconds)


def lease_left(action_id: int) -> float | None:
    """Seconds until a queued action's claim lapses; None if it is not queued."""
    rows = list(
        Action.objects.filter(pk=action_id, status=ActionStatus.QUEUED).values_list(
            "claimed_until", flat=True
        )
    )
    if not rows:
        return None
    until = rows[0]
    return 0.0 if until is None else max((until - timezone.now()).total_seconds(), 0.0)


def release_action(action_id: int, *, attempted: bool = True) -> None:
    """Give a claimed, still queued action back (a retry is scheduled).

    ``attempted=False``: nothing was sent for this claim (an action stored
    claimed that found an earlier one of its call still queued), so the attempt
    it counted is taken back; the next is not mistaken for a repeat."""
    changes: dict[str, Any] = {"claimed_until": None}
    if not attempted:
        changes["attempts"] = F("attempts") - 1
    Action.objects.filter(pk=action_id, status=ActionStatus.QUEUED).update(**changes)


# --- moving -------------------------------------------------------------------------


def record_sent(
    action: Action | int,
    *,
    operation_id: str = "",
    call: Call | None = None,
) -> Action | None:
    """Graph accepted the action; its outcome comes later. Links a created call.

    Given the claimed ``Action`` itself (as ``perform`` holds it) and no call to
    link, the move is one guarded UPDATE (``_mark_sent``) instead of reading the
    action under its lock and saving it."""
    if isinstance(action, Action) and call is None:
        return _mark_sent(action, operation_id)
    action_id = action.pk if isinstance(action, Action) else action

    def change(action: Action, now: datetime) -> bool:
        if not can_move_action(action.status, ActionStatus.SENT):
            return False
        action.status = ActionStatus.SENT
        action.sent_at = now
        action.claimed_until = None
        if operation_id:
            _set_operation(action, operation_id)
        if call is not None:
            action.call = call
        return True

    moved = _move(action_id, change, SENT_FIELDS)
    if moved is not None and call is not None:
        _settle_by_current_state(moved)
    return moved


def _mark_sent(action: Action, operation_id: str) -> Action | None:
    """Move ``action`` (loaded, claimed by this process) to ``sent``: its call's
    version locked and read (the lock order ingest keeps: the call first), then
    ``UPDATE … WHERE status = 'queued'``, so an action something else moved in the
    meantime (ingest finishing it) is left as it is and None is returned. The
    instance gets the fields written; the call is bumped and announced."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": ActionStatus.SENT,
        "sent_at": now,
        "claimed_until": None,
        "updated_at": now,
    }
    if operation_id:
        fields["operation_id"] = operation_id[:64]
        fields["operation_key"] = normalise_id(operation_id)[:64]
    with transaction.atomic():
        call = (
            performrows.locked_version(action.call_id)
            if action.call_id is not None
            else None
        )
        if not performrows.update_queued(action.pk, fields):
            return None
        for name, value in fields.items():
            setattr(action, name, value)
        if call is not None:
            delta = deltas.bump(call, actions=[action])
            deltas.announce([delta], {call.pk: call}, actions_changed={call.pk})
    return action


def record_outcome(
    action_id: int,
    status: str,
    *,
    result_code: int | None = None,
    result_subcode: int | None = None,
    message: str = "",
    error_code: str = "",
    operation_id: str = "",
) -> Action | None:
    """Move an action to ``completed`` or ``failed``; a final action stays as it is."""

    def change(action: Action, now: datetime) -> bool:
        return finish(
            action,
            status,
            now=now,
            result_code=result_code,
            result_subcode=result_subcode,
            message=message,
            error_code=error_code,
            operation_id=operation_id,
        )

    return _move(action_id, change, FINISH_FIELDS)


def _move(
    action_id: int,
    change: Callable[[Action, datetime], bool],
    fields: tuple[str, ...],
) -> Action | None:
    """Lock the action's call, then the action; apply ``change`` and save the
    ``fields`` it sets; bump and announce the call. The outcome ``change``
    audits is appended last (``audit.written_last``)."""
    with transaction.atomic(), audit.written_last():
        # Lock order: the call before its action, as ingest does. The call is
        # found through the action in the locking statement itself (a subquery
        # is not locked), one round trip instead of two.
        # Only the version is read: the bump needs nothing else of the row.
        # Both statements are compiled once (``lockedrows``): every outcome
        # of every action runs them.
        call = lockedrows.first("lifecycle.call", _owner_locked, action_id)
        action = lockedrows.first("lifecycle.action", _action_locked, action_id)
        if action is None or not change(action, timezone.now()):
            return None
        action.save(update_fields=fields)
        if action.call_id is not None:
            if call is None or call.pk != action.call_id:
                call = performrows.locked_version(action.call_id)
            if call is None:
                return action
            delta = deltas.bump(call, actions=[action])
            deltas.announce([delta], {call.pk: call}, actions_changed={call.pk})
    return action


def _owner_locked(action_id: int) -> QuerySet[Call]:
    """The action's call, locked, only its id and version read."""
    owner = Action.objects.filter(pk=action_id).values("call_id")[:1]
    return (
        Call.objects.select_for_update(no_key=True)
        .only("id", "version")
        .filter(pk=Subquery(owner))
    )


def _action_locked(action_id: int) -> QuerySet[Action]:
    return Action.objects.select_for_update(no_key=True).filter(pk=action_id)


def _settle_by_current_state(action: Action) -> None:
    """Finish a just-linked action if its call already shows the outcome.

    The first notifications of a call Callbot placed or joined can be applied
    before Graph's answer links the action to the call; ingest then found no action
    to settle, so the call's present state settles it here.
    """
    if action.call_id is None:
        return
    row = (
        Call.objects.filter(pk=action.call_id)
        .values("state", "result_code", "result_subcode", "result_message")
        .first()
    )
    status = kinds.settled_status(action.kind, row["state"]) if row else None
    if row is None or status is None:
        return
    if status == ActionStatus.COMPLETED:
        record_outcome(action.pk, status, message="Established.")
    else:
        record_outcome(
            action.pk,
            status,
            result_code=row["result_code"],
            result_subcode=row["result_subcode"],
            message=row["result_message"] or "The call ended before it was set up.",
        )


# --- calls Callbot created ------------------------------------------------------------


def store_created_call(resource: CallResource, **fields: Any) -> Call:
    """The Call row for a call Graph just created for us (place, join).

    The first notification may have beaten this answer and created the row already
    (ingest keys calls by the normalised id), so this gets or creates, then fills in
    what only the request knew: kind, targets, subject, meeting.
    """
    if not resource.id:
        raise ValueError("Graph answered without the new call's id")
    key = normalise_id(resource.id)[:64]
    with transaction.atomic():
        call, created = Call.objects.select_for_update(no_key=True).get_or_create(
            graph_key=key,
            defaults={
                "graph_id": resource.id[:64],
                "direction": "outgoing",
                "state": CallState.ESTABLISHING,
                "tenant_id": (resource.tenant_id or "")[:64],
                "my_participant_id": (resource.my_participant_id or "")[:64],
                "callback_uri": resource.callback_uri or "",
            },
        )
        changed: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "meeting":
                name, value = "meeting_id", value.pk
            if value not in (None, "", []) and getattr(call, name) != value:
                setattr(call, name, value)
                changed[name] = value
        if call.direction != "outgoing":
            call.direction = "outgoing"
            changed["direction"] = "outgoing"
        party_changed = call.add_party(call.targets)
        if party_changed and not (changed or created):
            call.save(update_fields=["party_display", "party_ids", "updated_at"])
        if changed or created:
            delta = deltas.bump(
                call,
                save=False,
                call_changes={
                    k: v for k, v in changed.items() if isinstance(v, str | int | list)
                }
                | {"state": call.state, "direction": call.direction},
            )
            call.save()
            deltas.announce(
                [delta], {call.pk: call}, fresh={call.pk} if created else ()
            )
    return call
