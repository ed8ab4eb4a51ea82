"""A batch's working set of calls: locked and loaded when a batch starts, written
back when it ends, in a number of statements that does not grow with the batch.

``lock_calls`` locks the calls a batch names in key order (creating rows for ids
not seen before); ``save_work`` writes every changed participant and call of the
batch, with one version bump per changed call, in one ``UPDATE … FROM (VALUES …)``
per table (``bulkwrite``). Used by ``ingest`` only; the decisions about what a
notification means are in ``rosters``/``callstate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.db.models.constants import OnConflict

from callbot.calls import deltas, lifecycle, live, lockedrows
from callbot.calls.bulkwrite import update_rows
from callbot.calls.callwork import CallWork, changed_participants
from callbot.calls.models import Call, Participant, ParticipantChange
from callbot.calls.states import (
    SUMMARY_FIELDS,
    SUMMARY_SOURCES,
    CallDirection,
    CallState,
    parse_call_state,
)
from callbot.graph.notifications import Notification, call_keys


def lock_calls(
    notifications: Sequence[Notification],
    now: datetime,
    *,
    readable: Callable[[Notification], bool] = lambda n: True,
) -> dict[str, CallWork]:
    """Lock (``FOR NO KEY UPDATE``) the calls ``notifications`` name, in key order,
    creating the ones not stored yet; one ``CallWork`` per call, by key. A call
    not stored yet is created only for a notification ``readable`` admits (it
    is asked of those notifications alone)."""
    keys = sorted(call_keys(notifications))
    locked: Iterable[Call]
    if len(keys) == 1:
        # Most batches name one call: that statement is compiled once
        # (``lockedrows``), as every answered call's batches send it.
        locked = lockedrows.rows("ingest.call", _one_call, keys[0])
    else:
        locked = (
            Call.objects.select_for_update(no_key=True)
            .filter(graph_key__in=keys)
            .order_by("graph_key")
        )
    calls = {c.graph_key: c for c in locked}
    fresh: set[str] = set()
    admitted = [n for n in notifications if n.call_key in calls or readable(n)]
    missing = sorted({n.call_key for n in admitted} - calls.keys())
    if missing:
        first = {n.call_key: n for n in reversed(admitted)}
        ours = _insert_calls([_new_call(first[k], now) for k in missing])
        calls.update(ours)
        fresh.update(ours)
        others = sorted(set(missing) - ours.keys())
        created = (
            Call.objects.select_for_update(no_key=True)
            .filter(graph_key__in=others)
            .order_by("graph_key")
            if others
            else ()
        )
        for c in created:
            calls[c.graph_key] = c
            # Another request may have created it first; only ours start at version 0.
            if c.version == 0 and c.event_count == 0:
                fresh.add(c.graph_key)
    work = {
        k: CallWork(
            call=c, fresh=k in fresh, base_version=c.version, state_seen=k not in fresh
        )
        for k, c in calls.items()
    }
    for key in fresh:
        # A new call's first delta announces it whole, starting from its initial state.
        item = work[key]
        item.call_changes.update(state=item.call.state, direction=item.call.direction)
        item.mutations += 1
    return work


def _one_call(key: str) -> QuerySet[Call]:
    return (
        Call.objects.select_for_update(no_key=True)
        .filter(graph_key=key)
        .order_by("graph_key")
    )


def _insert_calls(new: list[Call]) -> dict[str, Call]:
    """Insert ``new`` calls, skipping any another transaction stored meanwhile;
    the ones inserted, by key, their ids set. A row this transaction inserted is
    as good as locked (another waits for the commit to see it), so where the
    database returns the inserted rows (PostgreSQL, SQLite 3.35+) they are not
    read back: one statement fewer before a ring's row is published. Elsewhere
    none is returned and the caller reads and locks them all."""
    if not connection.features.can_return_rows_from_bulk_insert:
        Call.objects.bulk_create(new, ignore_conflicts=True)
        return {}
    meta = Call._meta
    fields = [f for f in meta.concrete_fields if not f.generated and f is not meta.pk]
    key = meta.get_field("graph_key")
    rows = Call.objects._insert(  # type: ignore[attr-defined]
        new, fields, returning_fields=[meta.pk, key], on_conflict=OnConflict.IGNORE
    )
    by_key = {c.graph_key: c for c in new}
    ours: dict[str, Call] = {}
    # One call alone takes Django's single-row path, which reads its row with
    # ``fetchone``: None when the insert was skipped as a conflict.
    for row in rows:
        if row is None:
            continue
        pk, graph_key = row
        call = by_key[graph_key]
        call.pk = pk
        call._state.adding = False
        call._state.db = connection.alias
        ours[graph_key] = call
    return ours


def _new_call(first: Notification, now: datetime) -> Call:
    state = CallState.ESTABLISHING
    direction = CallDirection.UNKNOWN
    if first.call is not None:
        if first.change_type == "deleted":
            state = CallState.TERMINATED
        else:
            state = parse_call_state(first.call.state) or state
        if first.call.direction in CallDirection.values:
            direction = CallDirection(first.call.direction)
    call = Call(
        graph_id=first.call_id,
        graph_key=first.call_key,
        state=state,
        direction=direction,
        terminated_at=now if state == CallState.TERMINATED else None,
    )
    call.refresh_summary()  # bulk_create does not call save()
    return call


def save_work(items: Iterable[CallWork], now: datetime) -> list[live.CallDelta]:
    """Write what the batch changed and return the deltas of the changed calls.

    In order: new participant rows (one insert), changed participant rows (one
    update), finished actions, the calls (one update: every call's
    ``last_notification_at``, and for a changed call its fields and its version,
    bumped once), then the participant changes (one insert, after the rows whose
    new ids they refer to). The calls' rows are locked by ``lock_calls``, and
    participant rows are written only under their call's lock.
    """
    items = list(items)
    everyone = [p for i in items for p in [*i.participants.values(), *i.left.values()]]
    changed, participant_fields = changed_participants(items, now)
    new = [p for p in everyone if p.pk is None]
    if new:
        Participant.objects.bulk_create(new)
    update_rows(Participant, changed, participant_fields)
    fields = {"last_notification_at", "updated_at"}
    changes: list[live.CallDelta] = []
    for item in items:
        for action in item.actions:
            action.save(update_fields=lifecycle.FINISH_FIELDS)
        call = item.call
        call.last_notification_at = now
        call.updated_at = now
        fields |= item.dirty
        if item.changed:
            fields.add("version")
            changes.append(
                deltas.bump(
                    call,
                    save=False,
                    call_changes=item.call_changes,
                    participants=item.participants.values(),
                    left=item.left.values(),
                    actions=item.actions,
                )
            )
    if SUMMARY_SOURCES & fields:
        fields.update(SUMMARY_FIELDS)
    for item in items:
        item.call.refresh_summary()
    update_rows(Call, [item.call for item in items], sorted(fields))
    log = [change for item in items for change in item.changes]
    if log:
        ParticipantChange.objects.bulk_create(log)
    return changes
