"""The board's read model: one row per live call, and what changed in a row.

A board row summarises a call for the page that lists them: its state, caller or
subject, who is in it, who is muted or sharing, and how many actions are pending.
``call_summaries`` builds whole rows in a fixed number of queries; ``attach_board_changes``
fills a delta's row with only what a transaction changed. Reads only.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator
from typing import Any, TypedDict, cast

from django.db import connection
from django.db.models import Field, Q, QuerySet

from callbot.calls.app_permissions import held_roles
from callbot.calls.availability import (
    APP_HOSTED,
    SERVICE_HOSTED,
    call_media,
    unavailable,
)
from callbot.calls.deciding import answer_deadline
from callbot.calls.dropped import call_dropped_reason
from callbot.calls.live import CallDelta, iso
from callbot.calls.models import Action, Call, Meeting, Participant
from callbot.calls.states import ActionStatus, CallKind, CallState
from callbot.graph.resources import Identity

PENDING = (ActionStatus.QUEUED, ActionStatus.SENT)


class CallSummaryShape(TypedDict):
    id: int
    graph_id: str
    kind: str
    direction: str
    state: str
    subject: str
    caller: str
    meeting_id: int | None
    created_at: str | None
    # When Microsoft stops waiting for an answer; None unless the call rings.
    answer_by: str | None
    # Held with music until a person takes it; None otherwise.
    waiting_since: str | None
    # Waiting for a supervisor until then (a policy's hand-off, an IVR queue),
    # and what Callbot does when the wait is over; None and "" otherwise.
    wait_ends_at: str | None
    wait_then: str
    established_at: str | None
    terminated_at: str | None
    participant_count: int
    muted_count: int
    sharing: list[str]
    pending_actions: int
    # Told apart on the board when meetings share a subject.
    organizer: str
    meeting_starts_at: str | None
    bot_muted: bool
    last_tone: str
    result: str
    # Controls not offered on this call now: kind -> reason code, whose sentence
    # is ``availability.REASONS[code]`` (sent once, in the socket's ``hello``).
    unavailable: dict[str, str]
    # The bot was dropped for lack of a permission: what happened, in words.
    dropped: str
    version: int


def live_calls() -> QuerySet[Call]:
    """Calls not yet terminated, newest first (served by ``call_live_idx``)."""
    return Call.objects.exclude(state=CallState.TERMINATED).order_by("-created_at")


def live_call_pages(size: int) -> Iterator[list[CallSummaryShape]]:
    """Every live call's board row, newest first, ``size`` calls per query (keyset
    on creation time and id), so a caller can send the first rows before the last
    are read. A call created meanwhile may be missed and one ended meanwhile listed:
    the board's deltas, joined before reading, carry both."""
    after: tuple[Any, int] | None = None
    while True:
        calls = live_calls().order_by("-created_at", "-pk")
        if after is not None:
            calls = calls.filter(
                Q(created_at__lt=after[0]) | Q(created_at=after[0], pk__lt=after[1])
            )
        page = list(calls[:size])
        if not page:
            return
        yield call_summaries(page)
        if len(page) < size:
            return
        after = (page[-1].created_at, page[-1].pk)


def refusal_key(call: Call) -> str:
    """What a call's ``unavailable`` depends on besides the app's roles."""
    return f"{call.kind}:{call_media(call)}:{call.state}"


def unavailable_table() -> dict[str, dict[str, str]]:
    """Every ``unavailable`` a board row can carry with the app's roles now, keyed
    by ``refusal_key``: what is offered depends on the call's kind, media hosting
    and state only (``callbot.calls.availability``), so a board snapshot sends each
    set of reason codes once and its rows name them by key."""
    roles = held_roles()
    table = {}
    for kind in CallKind.values:
        for media in (APP_HOSTED, SERVICE_HOSTED):
            for state in CallState.values:
                call = Call(kind=kind, media_config_kind=media, state=state)
                table[refusal_key(call)] = unavailable(call, roles)
    return table


def roster_counts(
    call_ids: set[int], *, read: bool = True
) -> dict[int, dict[str, Any]]:
    """Present participants, muted ones, the bot's mute and who shares, per call,
    in one statement and one scan: grouped by call, bot or person, and sharer
    (everyone not sharing in one group, each sharer in a group of their own),
    in the roster's order (joined, then id) so the sharers' names keep it.

    Plain SQL, as ``pending_action_counts``: every roster notification reads
    these on the applier's path to the board's delta, where two statements (the
    aggregate queryset, then who shares) cost a round trip and Django's query
    building more (bench/README.md, dashboard_latency). The call ids are sent
    once, as before: a snapshot of every live call binds one per call. Without
    ``read``: the counts of calls with nobody on them (a ring's new call)."""
    counts: dict[int, dict[str, Any]] = {
        i: {"participant_count": 0, "muted_count": 0, "bot_muted": False, "sharing": []}
        for i in call_ids
    }
    if not call_ids or not read:
        return counts
    ids = sorted(call_ids)
    with connection.cursor() as cursor:
        cursor.execute(_roster_sql(len(ids)), ids)
        rows = cursor.fetchall()
    for call_id, is_bot, n, muted, sharer, name, _ in rows:
        row = counts[int(call_id)]
        if sharer is not None:
            row["sharing"].append(name)
        if is_bot:
            row["bot_muted"] = row["bot_muted"] or int(muted) > 0
        else:
            row["participant_count"] += int(n)
            row["muted_count"] += int(muted)
    return counts


@functools.lru_cache(maxsize=64)
def _roster_sql(ids: int) -> str:
    """``roster_counts``' statement for ``ids`` call ids."""
    quote = connection.ops.quote_name
    table = quote(Participant._meta.db_table)

    def column(name: str) -> str:
        field = cast("Field[Any, Any]", Participant._meta.get_field(name))
        return quote(field.column)

    call_id, is_bot, sharing = (
        column("call"),
        column("is_bot"),
        column("is_sharing_screen"),
    )
    sharer = f"CASE WHEN {sharing} THEN {column('id')} END"
    marks = ", ".join(["%s"] * ids)
    # Only our own quoted names and placeholders are interpolated.
    return (
        f"SELECT {call_id}, {is_bot}, COUNT(*), "  # noqa: S608
        f"SUM(CASE WHEN {column('is_muted')} THEN 1 ELSE 0 END), {sharer}, "
        f"MAX(CASE WHEN {sharing} THEN {column('display_name')} END), "
        f"MIN({column('joined_at')}) FROM {table} "
        f"WHERE {call_id} IN ({marks}) AND {column('left_at')} IS NULL "
        f"GROUP BY {call_id}, {is_bot}, {sharer} ORDER BY 7, 5"
    )


def pending_action_counts(call_ids: set[int]) -> dict[int, int]:
    """Queued or sent actions per call; calls without any are left out.

    Plain SQL, not a queryset: every action's request and every move of it
    announces the count (several times per call), and building the aggregate
    queryset cost Django more CPU than the database spent answering it.
    """
    if not call_ids:
        return {}
    ids = sorted(call_ids)
    with connection.cursor() as cursor:
        cursor.execute(_pending_sql(len(ids)), [*ids, *PENDING])
        return {int(call_id): int(n) for call_id, n in cursor.fetchall()}


@functools.lru_cache(maxsize=64)
def _pending_sql(ids: int) -> str:
    """``pending_action_counts``' statement for ``ids`` call ids."""
    quote = connection.ops.quote_name
    table = quote(Action._meta.db_table)
    call_id = quote(Action._meta.get_field("call").column)
    status = quote(Action._meta.get_field("status").column)
    marks = ", ".join(["%s"] * ids)
    pending = ", ".join(["%s"] * len(PENDING))
    # Only our own quoted names and placeholders are interpolated.
    return (
        f"SELECT {call_id}, COUNT(*) FROM {table} "  # noqa: S608
        f"WHERE {call_id} IN ({marks}) AND {status} IN ({pending}) "
        f"GROUP BY {call_id}"
    )


def meeting_facts(meeting_ids: set[int]) -> dict[int, tuple[str, str | None]]:
    """(organizer id, scheduled start) per meeting; no query without meetings."""
    if not meeting_ids:
        return {}
    return {
        pk: (organizer, iso(starts))
        for pk, organizer, starts in Meeting.objects.filter(
            pk__in=meeting_ids
        ).values_list("pk", "organizer_id", "starts_at")
    }


def call_summaries(
    calls: Iterable[Call], *, empty: Collection[int] = ()
) -> list[CallSummaryShape]:
    """Board rows for the given calls, in two queries whatever their number (a
    third when some are meetings). ``empty``: calls known to have no
    participant and no action (created in this transaction with none written:
    a ring), whose counts are not asked of the database."""
    calls = list(calls)
    ids = {c.pk for c in calls}
    counts = roster_counts(ids - set(empty))
    counts.update(roster_counts(ids & set(empty), read=False))
    pending = pending_action_counts(ids - set(empty))
    meetings = meeting_facts({c.meeting_id for c in calls if c.meeting_id})
    roles = held_roles()
    # Reads the kind, media hosting and state only (``unavailable_table``): once each.
    refusals: dict[str, dict[str, str]] = {}
    for c in calls:
        key = refusal_key(c)
        if key not in refusals:
            refusals[key] = unavailable(c, roles)
    return [
        {
            "id": c.pk,
            "graph_id": c.graph_id,
            "kind": c.kind,
            "direction": c.direction,
            "state": c.state,
            "subject": c.subject,
            "caller": party(c),
            "meeting_id": c.meeting_id,
            "created_at": iso(c.created_at),
            "answer_by": (
                iso(answer_deadline(c)) if c.state == CallState.INCOMING else None
            ),
            "waiting_since": iso(c.waiting_since),
            "wait_ends_at": iso(c.wait_ends_at),
            "wait_then": c.wait_then,
            "established_at": iso(c.established_at),
            "terminated_at": iso(c.terminated_at),
            "participant_count": counts[c.pk]["participant_count"],
            "muted_count": counts[c.pk]["muted_count"],
            "sharing": counts[c.pk]["sharing"],
            "pending_actions": pending.get(c.pk, 0),
            # A meeting invite comes from its organiser: the caller names them.
            "organizer": c.source_display
            or meetings.get(c.meeting_id or 0, ("", None))[0],
            "meeting_starts_at": meetings.get(c.meeting_id or 0, ("", None))[1],
            "bot_muted": counts[c.pk]["bot_muted"],
            "last_tone": c.last_tone,
            "result": _result_text(c),
            "unavailable": dict(refusals[refusal_key(c)]),
            "dropped": call_dropped_reason(c),
            "version": c.version,
        }
        for c in calls
    ]


# Call fields that appear on the board row under the same name.
_BOARD_FIELDS = {
    "state",
    "kind",
    "direction",
    "subject",
    "last_tone",
    "meeting_id",
    "established_at",
    "terminated_at",
    "unavailable",
    "dropped",
    "waiting_since",
    "wait_ends_at",
    "wait_then",
}


def attach_board_changes(
    deltas: list[CallDelta],
    calls: dict[int, Call],
    *,
    fresh: set[int],
    roster_changed: set[int],
    actions_changed: set[int],
    empty: Collection[int] = frozenset(),
) -> None:
    """Fill each delta's board row with only what changed, in at most four queries
    whatever the number of calls (two for new rows, two for the counts).
    ``empty``: new calls known to have no participant and no action (created in
    this transaction with none written: a ring), whose row asks no count.

    A new call's row is sent whole; otherwise the row carries the changed call fields,
    and the roster counts or pending-action count only when those could have moved.
    Must run inside the transaction that made the changes, so counts match them.
    """
    whole = (
        {
            s["id"]: s
            for s in call_summaries((calls[i] for i in fresh), empty=fresh & set(empty))
        }
        if fresh
        else {}
    )
    counts = roster_counts(roster_changed - fresh)
    pending_for = actions_changed - fresh
    pending = pending_action_counts(pending_for)
    for delta in deltas:
        call = calls[delta.call_id]
        if delta.call_id in whole:
            delta.board = dict(whole[delta.call_id])
            continue
        board: dict[str, Any] = {"id": call.pk, "version": call.version}
        board.update({k: v for k, v in delta.call.items() if k in _BOARD_FIELDS})
        if {"source_display", "targets"} & delta.call.keys():
            board["caller"] = party(call)
        if {"result_code", "result_subcode", "result_message"} & delta.call.keys():
            board["result"] = _result_text(call)
        board.update(counts.get(delta.call_id, {}))
        if delta.call_id in pending_for:
            board["pending_actions"] = int(pending.get(delta.call_id, 0))
        delta.board = board


def party(c: Call) -> str:
    """Who the call is with, for people: whom the bot called on a call it placed
    (its source is the bot itself), else the caller."""
    first = c.targets[0] if c.direction == "outgoing" and c.targets else None
    if isinstance(first, dict):
        if isinstance(first.get("identity"), dict):
            who = Identity.from_identity_set(first["identity"])
            return who.display_name or who.id or c.source_display
        label = first.get("display_name") or first.get("user_id") or first.get("phone")
        if label:
            return str(label)
    return c.source_display


def party_id(c: Call) -> str:
    """The id of whom ``party`` names: the first target's on a call the bot placed
    (its source id is the bot's own application id), else the caller's."""
    if c.direction != "outgoing":
        return c.source_id
    first = c.targets[0] if c.targets else None
    if not isinstance(first, dict):
        return ""
    if isinstance(first.get("identity"), dict):
        return Identity.from_identity_set(first["identity"]).id
    return str(first.get("user_id") or first.get("phone") or "")


def _result_text(c: Call) -> str:
    if c.result_code is None:
        return ""
    return f"{c.result_code}/{c.result_subcode or 0} {c.result_message}".strip()
