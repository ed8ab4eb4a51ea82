"""Apply a batch of Graph notifications to calls and participants, in one transaction.

With ``services.py`` and the worker's ``lifecycle.py`` this is one of the few
modules that write domain state. Ingest is
idempotent by construction:

* every notification is stored once as a ``CallEvent`` under a unique identity
  (``Notification.digest``: its content, or for a full roster its delivery), so a
  redelivered one is recognised and changes nothing;
* call state moves only along ``states.CALL_MOVES``, so an older state arriving late
  (``establishing`` after ``established``) cannot roll the call back
  (``callstate.py``, with operations);
* a full roster is diffed against the present participants keyed by participant id,
  a delta roster is applied entry by entry in ``rosterSequenceNumber`` order, a
  full roster without sequences changes no sequenced entry; leaving participants
  are marked left, never deleted, and nothing reopens an ended call's roster
  (``rosters.py``, on the batch's working set of each call, ``callwork.py``);
* tones are deduplicated on their ``sequenceId``; what has no order information
  (``hold`` and ``established``, full rosters) stands as it arrives
  (docs/reliability.md, "Order").

A redelivered batch is all duplicates, yet its first delivery's after-commit work
may have died with its webhook: what its calls still wait on (a ringing call's
decision, a recording's download) is registered again (``redelivery.py``).

No authenticated notification is lost: one that is malformed or cannot be stored is
quarantined (``quarantine.py``) in the batch's transaction, and if applying the
batch still fails for anything but a database outage, the batch is applied again
one notification at a time, each in a savepoint, quarantining the ones that fail.

It must not import the dashboard or call Graph: the webhook answers fast and the
side effects (live deltas) run after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from callbot.calls import (
    audit,
    deltas,
    enqueue,
    lifecycle,
    live,
    lockedrows,
    redelivery,
    rostercache,
)
from callbot.calls.callstate import apply_call, apply_operation, settle_by_state
from callbot.calls.callwork import CallWork
from callbot.calls.models import (
    Action,
    Call,
    CallEvent,
    Participant,
    QuarantinedNotification,
)
from callbot.calls.quarantine import Reason, is_outage, quarantined
from callbot.calls.rosters import (
    apply_roster,
    end_roster,
    load_rosters,
    unreadable_entry,
)
from callbot.calls.signals import CallActivity, call_activity
from callbot.calls.states import (
    ActionStatus,
    CallState,
)
from callbot.calls.workset import lock_calls, save_work
from callbot.graph.notifications import (
    MalformedNotification,
    Notification,
    ResourceKind,
)
from callbot.graph.resources import CallResource

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """What became of a batch: ``stored + duplicates + quarantined`` is its size."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    deltas: list[live.CallDelta] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.deltas.extend(other.deltas)


@dataclass(frozen=True)
class Delivery:
    """One webhook request's batch: its notifications and what they were
    delivered with. ``now`` is when it was received."""

    notifications: Sequence[Notification | MalformedNotification]
    message_id: str
    tenant_id: str
    now: datetime

    def entries(self) -> list[_Entry]:
        return [
            _Entry(i, n, n.digest(self.message_id, i), self)
            for i, n in enumerate(self.notifications)
        ]


@dataclass(frozen=True)
class _Entry:
    position: int
    item: Notification | MalformedNotification
    digest: str
    delivery: Delivery


def apply_notifications(
    notifications: Sequence[Notification | MalformedNotification],
    *,
    message_id: str = "",
    tenant_id: str = "",
    received_at: datetime | None = None,
) -> IngestResult:
    """Store and apply a parsed notification batch; publish the deltas after commit.

    Steps:
    1. Apply the whole batch in one transaction (``_apply_batch``).
    2. If that raises anything but a database outage (``quarantine.is_outage``),
       it is rolled back and the batch is applied again one notification at a
       time, each in a savepoint of one transaction; a notification that still
       fails is quarantined with its error. Nothing is ever half-applied: a
       notification's writes commit together with its CallEvent, or not at all.

    Returns counts and the deltas; every notification is stored, a duplicate, or
    quarantined. Raises only an outage, with nothing written (the webhook answers
    503 and the platform delivers the batch again). Unknown calls and operations
    are not errors: they are stored and logged.
    """
    if not notifications:
        return IngestResult()
    delivery = Delivery(
        notifications, message_id, tenant_id, received_at or timezone.now()
    )
    return _apply_entries(delivery.entries(), delivery.now, message_id)


def apply_deliveries(deliveries: Sequence[Delivery]) -> IngestResult:
    """Apply several batches in arrival order as one, in one transaction; what
    each stores is what ``apply_notifications`` would store for it (its own
    message id, tenant, received time and identities).

    For the deferred webhook's applier (``inbox.py``): stored batches behind one
    another cost one set of statements instead of one per batch. Raises only an
    outage, with nothing written."""
    entries = [entry for d in deliveries for entry in d.entries()]
    if not entries:
        return IngestResult()
    now = max(d.now for d in deliveries)
    label = ",".join(d.message_id for d in deliveries)[:300]
    return _apply_entries(entries, now, label)


def _apply_entries(
    entries: Sequence[_Entry], now: datetime, message_id: str
) -> IngestResult:
    """``apply_notifications``'s steps for ``entries`` (``now``: the time their
    calls are created and saved at)."""
    result = IngestResult()
    try:
        with transaction.atomic(), audit.written_last():
            return _apply_batch(entries, now)
    except Exception as exc:
        if is_outage(exc):
            raise
        logger.warning(
            "batch failed to apply (%s: %s); applying it one notification at a time",
            type(exc).__name__,
            str(exc)[:300],
            extra={"message_id": message_id},
        )
    with transaction.atomic(), audit.written_last():
        _lock_present_calls(entries)
        for entry in entries:
            try:
                with transaction.atomic(), audit.written_last():
                    result.add(_apply_batch([entry], now))
            except Exception as exc:
                if is_outage(exc):
                    raise
                # A failure no check foresaw: the traceback is for whoever fixes it.
                logger.exception(
                    "notification %d failed to apply",
                    entry.position,
                    extra={"message_id": entry.delivery.message_id},
                )
                error = f"{type(exc).__name__}: {exc}"
                _keep([_quarantine(entry, Reason.FAILED, error)])
                result.quarantined += 1
    return result


def quarantine_batch(
    notifications: Sequence[Notification | MalformedNotification],
    error: str,
    *,
    message_id: str = "",
    tenant_id: str = "",
    received_at: datetime | None = None,
) -> int:
    """Quarantine (``failed``) every notification of a batch not already stored or
    quarantined, in the caller's transaction; returns how many.

    For a stored batch that could not be applied at all (``inbox.py``): its
    notifications are kept as evidence, like any that failed, and the batches
    behind it go on."""
    delivery = Delivery(
        notifications, message_id, tenant_id, received_at or timezone.now()
    )
    entries = delivery.entries()
    digests = [e.digest for e in entries]
    seen = _stored(digests) | _quarantined(digests)
    rows = [
        _quarantine(e, Reason.FAILED, error) for e in entries if e.digest not in seen
    ]
    _keep(rows)
    return len(rows)


def _apply_batch(entries: Sequence[_Entry], now: datetime) -> IngestResult:
    """Apply ``entries`` in the caller's transaction.

    Steps:
    1. Quarantine what cannot be applied: malformed notifications, and ones with a
       value our columns cannot hold (``_unstorable``).
    2. Lock the calls they name (creating rows for ids we have not seen: an
       outgoing call's first notification can beat the task that stores the create
       answer), in key order so concurrent batches cannot deadlock.
    3. Drop notifications already stored or quarantined (redelivery).
    4. Apply each remaining notification in array order and store it as a CallEvent.
    5. Save changed rows, bump each changed call's version once, and register the
       deltas for publication on commit.
    """
    result = IngestResult()
    # Keyed by the entry (several batches' positions can be the same).
    problems: dict[int, tuple[str, str]] = {}
    for entry in entries:
        if isinstance(entry.item, MalformedNotification):
            problems[id(entry)] = (Reason.MALFORMED, entry.item.problem)
        elif (why := _unstorable(entry.item)) is not None:
            problems[id(entry)] = (Reason.UNSTORABLE, why)
    digests = [e.digest for e in entries]
    # A notification quarantined before, delivered again, must not create the call
    # it never reached; one stored before found its call there already.
    held = _quarantined(digests)
    applicable = [
        e.item
        for e in entries
        if isinstance(e.item, Notification)
        and id(e) not in problems
        and e.digest not in held
    ]
    entry_of = {id(e.item): e for e in entries}

    def readable(n: Notification, item: CallWork | None = None) -> bool:
        # A roster's entries are read when applied (``Roster``); one that cannot
        # be read is quarantined like any notification that cannot, before it
        # creates a call or is applied.
        if n.roster is None or (why := unreadable_entry(item, n.roster)) is None:
            return True
        entry = entry_of[id(n)]
        where = f"value[{entry.position}].resourceData"
        problems[id(entry)] = (Reason.MALFORMED, f"{where}: {why}")
        return False

    work = lock_calls(applicable, now, readable=readable) if applicable else {}
    # Under the calls' locks: a concurrent delivery of the same batch waits here
    # for this one, then finds its notifications stored.
    stored = _stored(digests) if _may_be_stored(entries, work) else set()
    seen = stored | held
    pending = [
        e.item
        for e in entries
        if e.digest not in seen
        and id(e) not in problems
        and isinstance(e.item, Notification)
    ]
    load_rosters(work, pending)
    for n in pending:
        readable(n, work[n.call_key])
    events: list[CallEvent] = []
    kept: list[QuarantinedNotification] = []
    redelivered: list[Notification] = []
    for entry in entries:
        if entry.digest in seen:
            result.duplicates += 1
            if entry.digest in stored and isinstance(entry.item, Notification):
                redelivered.append(entry.item)
            continue
        seen.add(entry.digest)
        notification = entry.item
        if id(entry) in problems or not isinstance(notification, Notification):
            kept.append(_quarantine(entry, *problems[id(entry)]))
            continue
        item = work[notification.call_key]
        delivery = entry.delivery
        applied = _apply(item, notification, delivery.now)
        item.call.event_count += 1
        item.dirty.add("event_count")
        events.append(
            CallEvent(
                call=item.call,
                sequence=item.call.event_count,
                digest=entry.digest,
                change_type=notification.change_type,
                resource_url=notification.resource_url[:2000],
                resource_kind=notification.kind.value,
                message_id=delivery.message_id[:128],
                tenant_id=delivery.tenant_id[:64],
                payload=notification.payload,
                applied=applied,
                received_at=delivery.now,
            )
        )
    CallEvent.objects.bulk_create(events)
    result.stored = len(events)
    _keep(kept)
    result.quarantined = len(kept)
    result.deltas.extend(save_work(work.values(), now))
    rostercache.keep_on_commit(list(work.values()))
    deltas.announce(
        result.deltas,
        {item.call.pk: item.call for item in work.values()},
        fresh={item.call.pk for item in work.values() if item.fresh},
        roster_changed={
            item.call.pk for item in work.values() if item.participants or item.left
        },
        actions_changed={item.call.pk for item in work.values() if item.actions},
        # Created by this batch with nobody on it yet (a ring): no action can
        # name it, so its row's counts are known without asking.
        empty={
            item.call.pk
            for item in work.values()
            if item.fresh and not (item.participants or item.left or item.actions)
        },
    )
    undecided = redelivery.replay(work, redelivered)
    activity = [
        _activity(item, created=item.fresh or item.call.pk in undecided)
        for item in work.values()
        if item.changed or item.call.pk in undecided
    ]
    if activity:
        transaction.on_commit(lambda: _announce(activity))
    for item in work.values():
        for action_id, location, token in item.recordings:
            # The token is short-lived and never stored: it travels to the task.
            enqueue.send_on_commit(enqueue.FETCH_RECORDING, action_id, location, token)
    return result


# Columns whose values are keys: cutting one to fit could merge two calls or two
# participants, so a notification with a longer one is quarantined instead.
_CALL_ID_MAX = Call.graph_id.field.max_length or 0
_PARTICIPANT_ID_MAX = Participant.graph_id.field.max_length or 0
_CHANGE_TYPE_MAX = CallEvent.change_type.field.max_length or 0


def _quarantined(digests: list[str]) -> set[str]:
    return lockedrows.present(QuarantinedNotification, "digest", digests)


def _stored(digests: list[str]) -> set[str]:
    return lockedrows.present(CallEvent, "digest", digests)


def _may_be_stored(entries: Sequence[_Entry], work: dict[str, CallWork]) -> bool:
    """Whether any of ``entries`` may be stored already: not if each names a call
    this transaction created (a ring's first batch), which has no events."""
    for e in entries:
        if not isinstance(e.item, Notification):
            return True
        item = work.get(e.item.call_key)
        if item is None or not item.fresh:
            return True
    return False


def _unstorable(n: Notification) -> str | None:
    """Why ``n`` cannot be stored as it is, or None. Descriptive text (names,
    subjects, messages) is cut to its column where it is written; ids are not."""
    if len(n.call_id) > _CALL_ID_MAX:
        return f"call id is longer than {_CALL_ID_MAX} characters"
    if len(n.change_type) > _CHANGE_TYPE_MAX:
        return f"changeType is longer than {_CHANGE_TYPE_MAX} characters"
    if n.roster is not None:
        for participant_id in n.roster.ids:
            if participant_id is not None and len(participant_id) > _PARTICIPANT_ID_MAX:
                return f"participant id is longer than {_PARTICIPANT_ID_MAX} characters"
    return None


def _quarantine(entry: _Entry, reason: str, error: str) -> QuarantinedNotification:
    delivery = entry.delivery
    return quarantined(
        entry.item,
        digest=entry.digest,
        position=entry.position,
        reason=reason,
        error=error,
        message_id=delivery.message_id,
        tenant_id=delivery.tenant_id,
        received_at=delivery.now,
    )


def _keep(rows: list[QuarantinedNotification]) -> None:
    # A quarantined notification locks no call, so two deliveries of one batch can
    # both get here: the second one's row is the same, and is skipped.
    QuarantinedNotification.objects.bulk_create(rows, ignore_conflicts=True)


def _lock_present_calls(entries: Sequence[_Entry]) -> None:
    """Lock the stored calls of a batch in key order before it is applied one
    notification at a time, so that path cannot deadlock with another batch on
    them either. Best effort: a failure here is left to each notification."""
    keys = sorted(
        {e.item.call_key for e in entries if isinstance(e.item, Notification)}
    )
    try:
        with transaction.atomic():
            list(
                Call.objects.select_for_update(no_key=True)
                .filter(graph_key__in=keys)
                .order_by("graph_key")
                .values_list("pk", flat=True)
            )
    except Exception as exc:
        if is_outage(exc):
            raise
        logger.warning("could not lock the calls of a batch: %s", exc)


_NO_RESOURCE = CallResource.parse({})


def end_call_locally(call_id: int, reason: str) -> bool:
    """End a call whose ending Graph never told us (reconciliation found it gone).

    Applied like a ``deleted`` notification: state, roster and pending actions move
    in one transaction with one version bump, and the delta and the activity are
    announced after commit. Returns False if the call had already ended.
    """
    now = timezone.now()
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(no_key=True)
            .filter(pk=call_id)
            .exclude(state=CallState.TERMINATED)
            .first()
        )
        if call is None:
            return False
        item = CallWork(call=call, fresh=False, base_version=call.version)
        old_state = call.state
        item.set("state", CallState.TERMINATED.value)
        item.set("terminated_at", now, live.iso(now))
        item.set("result_message", reason[:2000])
        end_roster(item, now)
        settle_by_state(
            item, old_state, CallState.TERMINATED, _NO_RESOURCE, now, lost=reason
        )
        for action in Action.objects.select_for_update(no_key=True).filter(
            call=call, status__in=[ActionStatus.QUEUED, ActionStatus.SENT]
        ):
            if any(a.pk == action.pk for a in item.actions):
                continue
            if lifecycle.finish(
                action,
                ActionStatus.FAILED,
                now=now,
                message=reason,
                error_code="call_lost",
            ):
                item.actions.append(action)
        changes = save_work([item], now)
        deltas.announce(
            changes,
            {call.pk: call},
            roster_changed={call.pk} if item.left else (),
            actions_changed={call.pk} if item.actions else (),
        )
        activity = [_activity(item)]
        transaction.on_commit(lambda: _announce(activity))
    return True


def _activity(item: CallWork, *, created: bool | None = None) -> CallActivity:
    call = item.call
    return CallActivity(
        call_id=call.pk,
        graph_id=call.graph_id,
        created=item.fresh if created is None else created,
        direction=call.direction,
        kind=call.kind,
        state=call.state,
        state_changed="state" in item.call_changes,
        tones=tuple(item.tones),
        finished_actions=tuple((a.pk, a.kind, a.status) for a in item.actions),
        terminated="terminated_at" in item.call_changes,
    )


def _announce(activity: list[CallActivity]) -> None:
    # A receiver's failure must not turn an applied batch into a 500: the platform
    # would redeliver what is already stored.
    for receiver, response in call_activity.send_robust(sender=Call, activity=activity):
        if isinstance(response, Exception):
            logger.error(
                "call_activity receiver %r failed",
                receiver,
                exc_info=(type(response), response, response.__traceback__),
            )


def _apply(item: CallWork, n: Notification, now: datetime) -> bool:
    """Apply one notification; True if it changed anything."""
    before = item.mutations
    if n.kind is ResourceKind.CALL and n.call is not None:
        apply_call(item, n, n.call, now)
    elif n.kind is ResourceKind.PARTICIPANTS and n.roster is not None:
        apply_roster(item, n.roster, now)
    elif n.kind is ResourceKind.OPERATION and n.operation is not None:
        apply_operation(item, n, now)
    else:
        logger.info(
            "stored %s notification without applying it",
            n.kind.value,
            extra={"call_id": n.call_id, "resource_url": n.resource_url},
        )
    return item.mutations != before
