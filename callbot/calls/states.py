"""Call and action states, and the moves allowed between them.

Pure Python: no ORM. One lower_snake value per state, used alike in the database,
the API and the socket. Graph's camelCase values (``transferAccepted``) are mapped
by ``callbot.graph.resources.camel_to_snake`` before they reach here.

The call table encodes contract §3.2: notifications may arrive out of order
(``establishing`` after ``established``), so a move not in the table is a stale
update and is ignored rather than applied; ``terminated`` is final.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models


class CallState(models.TextChoices):
    INCOMING = "incoming"
    ESTABLISHING = "establishing"
    RINGING = "ringing"
    ESTABLISHED = "established"
    HOLD = "hold"
    TRANSFERRING = "transferring"
    TRANSFER_ACCEPTED = "transfer_accepted"
    REDIRECTING = "redirecting"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


class CallDirection(models.TextChoices):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    UNKNOWN = "unknown"


class CallKind(models.TextChoices):
    # The page's wording (static/dashboard/live.js KIND_LABELS), not Django's
    # "Peer To Peer" made from the value.
    PEER_TO_PEER = "peer_to_peer", "Peer-to-peer"
    GROUP = "group"
    MEETING = "meeting"


class CallOutcome(models.TextChoices):
    """How a call came out, for the history, the reports and the board: derived
    from its state, whether it was ever established, its direction, Graph's
    result code and whether Callbot rejected or redirected it (``call_outcome``,
    the one classification all three read)."""

    LIVE = "live"
    ANSWERED = "answered"
    UNANSWERED = "unanswered", "Not answered"
    ABANDONED = "abandoned"
    TRANSFERRED = "transferred"
    FAILED = "failed"


# Graph's subcode for a completed transfer (contract §11.2), under code 200 or 0.
TRANSFER_COMPLETED_SUBCODE = 7015
# Graph's result when nobody answered within its answer window (contract §11.2).
RANG_OUT = (408, 1106)


def call_outcome(
    state: str,
    established: bool,
    result_code: int | None,
    subcode: int | None,
    *,
    incoming: bool = False,
    passed_on: bool = False,
) -> CallOutcome:
    """The outcome of a call in ``state``: live until terminated. An incoming
    call never established that Callbot did not reject or redirect
    (``passed_on``) is abandoned: it rang out (408/1106) or its caller hung up
    (any other result below 400, or none). Otherwise failed on a 4xx/5xx
    result, transferred on subcode 7015, else answered if it was ever
    established and not answered otherwise (rejected, redirected, an outgoing
    call nobody took)."""
    if state != CallState.TERMINATED:
        return CallOutcome.LIVE
    code = result_code
    ended_ringing = code is None or code < 400 or (code, subcode) == RANG_OUT
    if incoming and not established and not passed_on and ended_ringing:
        return CallOutcome.ABANDONED
    if code is not None and code >= 400:
        return CallOutcome.FAILED
    if subcode == TRANSFER_COMPLETED_SUBCODE:
        return CallOutcome.TRANSFERRED
    return CallOutcome.ANSWERED if established else CallOutcome.UNANSWERED


# The columns the history's summary (``outcome``, ``duration_seconds``) follows.
SUMMARY_SOURCES = frozenset(
    {
        "state",
        "established_at",
        "terminated_at",
        "result_code",
        "result_subcode",
        "direction",
    }
)
SUMMARY_FIELDS = ("outcome", "duration_seconds")


def call_summary(
    state: str,
    established_at: datetime | None,
    terminated_at: datetime | None,
    result_code: int | None,
    subcode: int | None,
    *,
    incoming: bool = False,
    passed_on: bool = False,
) -> tuple[CallOutcome, int]:
    """(outcome, seconds from established to terminated; 0 if either is unset)."""
    seconds = 0
    if established_at is not None and terminated_at is not None:
        seconds = max(0, round((terminated_at - established_at).total_seconds()))
    outcome = call_outcome(
        state,
        established_at is not None,
        result_code,
        subcode,
        incoming=incoming,
        passed_on=passed_on,
    )
    return outcome, seconds


class ActionStatus(models.TextChoices):
    QUEUED = "queued"
    SENT = "sent"
    COMPLETED = "completed"
    FAILED = "failed"


S = CallState

# from-state -> states a notification may move the call to. Anything may end.
CALL_MOVES: dict[CallState, frozenset[CallState]] = {
    S.INCOMING: frozenset(
        {S.ESTABLISHING, S.RINGING, S.ESTABLISHED, S.REDIRECTING, S.TERMINATING}
    ),
    S.ESTABLISHING: frozenset({S.RINGING, S.ESTABLISHED, S.TERMINATING}),
    S.RINGING: frozenset({S.ESTABLISHED, S.TERMINATING}),
    S.ESTABLISHED: frozenset({S.HOLD, S.TRANSFERRING, S.REDIRECTING, S.TERMINATING}),
    S.HOLD: frozenset({S.ESTABLISHED, S.TRANSFERRING, S.TERMINATING}),
    # A failed transfer comes back to established (contract §6.7).
    S.TRANSFERRING: frozenset({S.TRANSFER_ACCEPTED, S.ESTABLISHED, S.TERMINATING}),
    S.TRANSFER_ACCEPTED: frozenset({S.ESTABLISHED, S.TERMINATING}),
    S.REDIRECTING: frozenset({S.TERMINATING}),
    S.TERMINATING: frozenset(),
    S.TERMINATED: frozenset(),
}
for _source in CALL_MOVES:
    if _source is not S.TERMINATED:
        CALL_MOVES[_source] = CALL_MOVES[_source] | {S.TERMINATED}

LIVE_STATES: frozenset[CallState] = frozenset(set(CallState) - {S.TERMINATED})
CONNECTED_STATES: frozenset[CallState] = frozenset({S.ESTABLISHED, S.HOLD})

FINAL_ACTION_STATUSES: frozenset[ActionStatus] = frozenset(
    {ActionStatus.COMPLETED, ActionStatus.FAILED}
)
ACTION_MOVES: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.QUEUED: frozenset({ActionStatus.SENT, *FINAL_ACTION_STATUSES}),
    ActionStatus.SENT: FINAL_ACTION_STATUSES,
    ActionStatus.COMPLETED: frozenset(),
    ActionStatus.FAILED: frozenset(),
}


def parse_call_state(value: str | None) -> CallState | None:
    """The CallState for a lower_snake value, or None for values we do not know."""
    if value is None:
        return None
    try:
        return CallState(value)
    except ValueError:
        return None


def can_move_call(current: str, new: str) -> bool:
    """True if a notification may move a call from ``current`` to ``new``."""
    try:
        return CallState(new) in CALL_MOVES[CallState(current)]
    except ValueError:
        return False


def can_move_action(current: str, new: str) -> bool:
    try:
        return ActionStatus(new) in ACTION_MOVES[ActionStatus(current)]
    except ValueError:
        return False


def is_live(state: str) -> bool:
    return state != CallState.TERMINATED
