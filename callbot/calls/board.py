"""The board's read model: one row per live call, and what changed in a row.

A board row summarises a call for the page that lists them: its state, caller or
subject, who is in it, who is muted or sharing, and how many actions are pending.
``call_summaries`` builds whole rows in a fixed number of queries; ``attach_board_changes``
fills a delta's row with only what a transaction changed. Reads only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

from django.db.models import Count, Q, QuerySet

from callbot.calls.live import CallDelta, iso
from callbot.calls.models import Action, Call, Participant
from callbot.calls.params import answer_deadline
from callbot.calls.states import ActionStatus, CallState

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
    established_at: str | None
    terminated_at: str | None
    participant_count: int
    muted_count: int
    sharing: list[str]
    pending_actions: int
    bot_muted: bool
    last_tone: str
    result: str
    version: int


def live_calls() -> QuerySet[Call]:
    """Calls not yet terminated, newest first (served by ``call_live_idx``)."""
    return Call.objects.exclude(state=CallState.TERMINATED).order_by("-created_at")


def roster_counts(call_ids: set[int]) -> dict[int, dict[str, Any]]:
    """Present participants, muted ones, the bot's mute and who shares, per call."""
    counts: dict[int, dict[str, Any]] = {
        i: {"participant_count": 0, "muted_count": 0, "bot_muted": False, "sharing": []}
        for i in call_ids
    }
    if not call_ids:
        return counts
    for call_id, is_bot, n, muted in (
        Participant.objects.filter(call_id__in=call_ids, left_at__isnull=True)
        .values("call_id", "is_bot")
        .annotate(n=Count("id"), muted=Count("id", filter=Q(is_muted=True)))
        .values_list("call_id", "is_bot", "n", "muted")
    ):
        row = counts[call_id]
        if is_bot:
            row["bot_muted"] = muted > 0
        else:
            row["participant_count"], row["muted_count"] = n, muted
    for call_id, name in Participant.objects.filter(
        call_id__in=call_ids, left_at__isnull=True, is_sharing_screen=True
    ).values_list("call_id", "display_name"):
        counts[call_id]["sharing"].append(name)
    return counts


def pending_action_counts(call_ids: set[int]) -> dict[int, int]:
    if not call_ids:
        return {}
    return dict(
        Action.objects.filter(call_id__in=call_ids, status__in=PENDING)
        .values("call_id")
        .annotate(n=Count("id"))
        .values_list("call_id", "n")
    )


def call_summaries(calls: Iterable[Call]) -> list[CallSummaryShape]:
    """Board rows for the given calls, in three queries whatever their number."""
    calls = list(calls)
    ids = {c.pk for c in calls}
    counts = roster_counts(ids)
    pending = pending_action_counts(ids)
    return [
        {
            "id": c.pk,
            "graph_id": c.graph_id,
            "kind": c.kind,
            "direction": c.direction,
            "state": c.state,
            "subject": c.subject,
            "caller": c.source_display,
            "meeting_id": c.meeting_id,
            "created_at": iso(c.created_at),
            "answer_by": (
                iso(answer_deadline(c)) if c.state == CallState.INCOMING else None
            ),
            "waiting_since": iso(c.waiting_since),
            "established_at": iso(c.established_at),
            "terminated_at": iso(c.terminated_at),
            "participant_count": counts[c.pk]["participant_count"],
            "muted_count": counts[c.pk]["muted_count"],
            "sharing": counts[c.pk]["sharing"],
            "pending_actions": pending.get(c.pk, 0),
            "bot_muted": counts[c.pk]["bot_muted"],
            "last_tone": c.last_tone,
            "result": _result_text(c),
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
    "waiting_since",
}


def attach_board_changes(
    deltas: list[CallDelta],
    calls: dict[int, Call],
    *,
    fresh: set[int],
    roster_changed: set[int],
    actions_changed: set[int],
) -> None:
    """Fill each delta's board row with only what changed, in at most six queries
    whatever the number of calls (three for new rows, three for the counts).

    A new call's row is sent whole; otherwise the row carries the changed call fields,
    and the roster counts or pending-action count only when those could have moved.
    Must run inside the transaction that made the changes, so counts match them.
    """
    whole = (
        {s["id"]: s for s in call_summaries(calls[i] for i in fresh)} if fresh else {}
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
        if "source_display" in delta.call:
            board["caller"] = call.source_display
        if {"result_code", "result_subcode", "result_message"} & delta.call.keys():
            board["result"] = _result_text(call)
        board.update(counts.get(delta.call_id, {}))
        if delta.call_id in pending_for:
            board["pending_actions"] = int(pending.get(delta.call_id, 0))
        delta.board = board


def _result_text(c: Call) -> str:
    if c.result_code is None:
        return ""
    return f"{c.result_code}/{c.result_subcode or 0} {c.result_message}".strip()
