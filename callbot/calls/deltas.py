"""The one way a call's version moves: bump it, build the delta, announce it.

Every transaction that changes what browsers show of a call advances the call's
version by exactly one and publishes one delta carrying ``base_version`` (what it
applies on top of) and ``version``. Ingest, the service and the worker's lifecycle
all build it here, under the call's row lock, and announce it after commit.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.db import connection

from callbot.calls import board, live
from callbot.calls.app_permissions import held_roles
from callbot.calls.availability import unavailable
from callbot.calls.dropped import call_dropped_reason
from callbot.calls.models import Action, Call, Participant

_AVAILABILITY_INPUTS = frozenset({"kind", "media_config_kind", "state"})
_RESULT_FIELDS = frozenset({"result_code", "result_subcode", "result_message"})


def bump(
    call: Call,
    *,
    save: bool = True,
    call_changes: Mapping[str, Any] | None = None,
    participants: Iterable[Participant] = (),
    left: Iterable[Participant] = (),
    actions: Iterable[Action] = (),
) -> live.CallDelta:
    """Advance ``call.version`` by one and return the delta of these changes.

    The caller holds the call's row lock. With ``save`` the new version is written
    at once; without it the caller saves the row itself (ingest writes the version
    with the rest of the call's fields in one UPDATE).
    """
    base = call.version
    call.version = base + 1
    if save:
        with connection.cursor() as cursor:
            cursor.execute(_bump_sql(), [call.pk])
    changes = dict(call_changes or {})
    # Derived fields travel with what they are derived from, so a page never
    # works them out itself: what is offered follows the call's kind, media and state,
    # the drop sentence its end result.
    if _AVAILABILITY_INPUTS & changes.keys():
        changes["unavailable"] = unavailable(call, held_roles())
    if _RESULT_FIELDS & changes.keys():
        changes["dropped"] = call_dropped_reason(call)
    return live.CallDelta(
        call_id=call.pk,
        base_version=base,
        version=call.version,
        call=changes,
        participants=[live.participant_shape(p) for p in participants],
        left=[p.graph_id for p in left],
        actions=[live.action_shape(a) for a in actions],
    )


@functools.lru_cache(maxsize=1)
def _bump_sql() -> str:
    """``bump``'s UPDATE. Plain SQL, not ``QuerySet.update``: it runs for every
    action requested and every move of one (six times per answered IVR call in
    the worker), and building the queryset cost Django more CPU than the
    database spent on the statement."""
    quote = connection.ops.quote_name
    table = quote(Call._meta.db_table)
    version = quote(Call._meta.get_field("version").column)
    pk = quote(Call._meta.pk.column)
    # Only our own quoted names are interpolated.
    return f"UPDATE {table} SET {version} = {version} + 1 WHERE {pk} = %s"  # noqa: S608


def announce(
    deltas: list[live.CallDelta],
    calls: Mapping[int, Call],
    *,
    fresh: Collection[int] = (),
    roster_changed: Collection[int] = (),
    actions_changed: Collection[int] = (),
    empty: Collection[int] = (),
) -> None:
    """Fill the deltas' board rows and publish them once the transaction commits.

    Must run inside the transaction that made the changes, so the board's counts
    match them. ``fresh`` calls are new on the board and sent whole; ``empty``
    ones of them are known to have no participant and no action.
    """
    if not deltas:
        return
    board.attach_board_changes(
        deltas,
        dict(calls),
        fresh=set(fresh),
        roster_changed=set(roster_changed),
        actions_changed=set(actions_changed),
        empty=set(empty),
    )
    live.publish_on_commit(deltas)
