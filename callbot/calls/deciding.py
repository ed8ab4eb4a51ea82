"""Whether a ringing call may still be decided (answered, rejected or
redirected): inside Teams' answer window, with no other decision under way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.utils import timezone

from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, Call
from callbot.calls.states import ActionStatus
from callbot.graph.limits import ANSWER_WINDOW_SECONDS

# The three ways to decide a ringing call; only one may be under way at a time.
DECISION_KINDS = (Action.Kind.ANSWER, Action.Kind.REJECT, Action.Kind.REDIRECT)
_PENDING = (ActionStatus.QUEUED, ActionStatus.SENT)


def answer_deadline(call: Call) -> datetime:
    """When Microsoft stops waiting for the bot to answer ``call`` (§6.4): the
    window runs from the incoming notification, which created the row."""
    return call.created_at + timedelta(seconds=ANSWER_WINDOW_SECONDS)


# The call (pk, version) ``undecided`` found no decision under way for.
_undecided: ContextVar[tuple[int, int] | None] = ContextVar("undecided", default=None)


@contextmanager
def undecided(call: Call, verb: str) -> Iterator[None]:
    """``still_ringing(call, verb)``, and inside the block no second "decision
    under way?" read for this call while its version is the one checked: the
    caller holds the call's row lock for the whole block, so no other
    transaction can queue a decision on it, and every action this one queues
    on it advances the version (``deltas.bump``) and is looked for again. An
    answer into a flow checks before starting the flow and again when the
    flow's first step requests the answer: one round trip fewer per click."""
    still_ringing(call, verb)
    token = _undecided.set((call.pk, call.version))
    try:
        yield
    finally:
        _undecided.reset(token)


def still_ringing(call: Call | None, verb: str, now: datetime | None = None) -> None:
    """Refuse to decide a call whose answer window has passed, or one another
    answer, reject or redirect is already deciding. ``call`` is locked."""
    if call is None:
        return
    now = now or timezone.now()
    if now >= answer_deadline(call):
        raise ActionRefusedError(
            "wrong_state",
            f"Too late to {verb} this call: Teams waits {ANSWER_WINDOW_SECONDS} s "
            "for an answer and is ending it.",
        )
    if _undecided.get() == (call.pk, call.version):
        return  # asked under this lock, and no action queued on the call since
    pending = call.actions.filter(kind__in=DECISION_KINDS, status__in=_PENDING)
    # A bare existence test unless someone to name.
    if not pending.exists():
        return
    under_way = pending.select_related("requested_by").order_by("pk").first()
    if under_way is not None:
        who = (
            under_way.requested_by.get_username()
            if under_way.requested_by is not None
            else "the bot"
        )
        raise ActionRefusedError(
            "wrong_state",
            f"{who} is already deciding this call "
            f"({under_way.get_kind_display().lower()}).",
        )
