"""The board's KPI strip: a few figures about calls now and in the last hour.

Computed from set-based aggregates (four queries whatever the number of calls),
by each web process's board pulse (``pulse.py``) every few seconds and in the
board snapshot. Reads only. Definitions, as the page's tooltips give them:

* ``ringing``: incoming calls ringing, not yet answered (state ``incoming``);
  ``longest_wait_since``: when the one waiting longest started ringing (the page
  counts the seconds);
* ``active``: calls connected now (established or on hold);
* ``in_ivr``: live calls running an IVR flow;
* ``people``: people in live calls: present participants of group calls and
  meetings (the bot not counted), plus the caller of each live peer-to-peer call;
* ``answered_hour``: incoming calls answered (established) in the last hour;
* ``abandoned_hour``: calls abandoned (``CallOutcome.ABANDONED``, as the history
  and the reports say: incoming, never answered, not rejected or redirected by
  Callbot) that ended in the last hour;
* ``failed_actions_hour``: actions that failed in the last hour;
* ``avg_handle_seconds``: average time from answer to end of the calls that
  ended in the last hour after being answered; null when there were none.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
)
from django.utils import timezone

from callbot.calls.alerts import RINGING_STATES
from callbot.calls.live import iso
from callbot.calls.models import Action, Call, Participant
from callbot.calls.states import (
    CONNECTED_STATES,
    ActionStatus,
    CallKind,
    CallOutcome,
    CallState,
)
from callbot.ivr.models import IvrSession

WINDOW = timedelta(hours=1)


class Kpis(TypedDict):
    ringing: int
    longest_wait_since: str | None
    active: int
    in_ivr: int
    people: int
    answered_hour: int
    abandoned_hour: int
    failed_actions_hour: int
    avg_handle_seconds: int | None


def board_kpis(now: datetime | None = None) -> Kpis:
    """The KPI strip's figures (see the module docstring for each definition)."""
    now = now or timezone.now()
    since = now - WINDOW
    live = ~Q(state=CallState.TERMINATED)
    ringing = Q(state__in=RINGING_STATES)
    incoming = Q(direction="incoming")
    ended_recently = Q(state=CallState.TERMINATED, terminated_at__gte=since)
    handled = ended_recently & Q(established_at__isnull=False)
    calls = Call.objects.filter(live | ended_recently | Q(established_at__gte=since))
    figures = calls.aggregate(
        ringing=Count("pk", filter=ringing),
        oldest=Min("created_at", filter=ringing),
        active=Count("pk", filter=Q(state__in=CONNECTED_STATES)),
        callers=Count("pk", filter=live & Q(kind=CallKind.PEER_TO_PEER)),
        answered=Count("pk", filter=incoming & Q(established_at__gte=since)),
        abandoned=Count("pk", filter=ended_recently & Q(outcome=CallOutcome.ABANDONED)),
        handle=Avg(
            ExpressionWrapper(
                F("terminated_at") - F("established_at"), output_field=DurationField()
            ),
            filter=handled,
        ),
    )
    people = (
        Participant.objects.filter(left_at__isnull=True, is_bot=False)
        .exclude(call__state=CallState.TERMINATED)
        .exclude(call__kind=CallKind.PEER_TO_PEER)
        .count()
    )
    failed = Action.objects.filter(
        status=ActionStatus.FAILED, completed_at__gte=since
    ).count()
    in_ivr = (
        IvrSession.objects.filter(status=IvrSession.Status.RUNNING)
        .exclude(call__state=CallState.TERMINATED)
        .count()
    )
    handle = figures["handle"]
    return {
        "ringing": figures["ringing"],
        "longest_wait_since": iso(figures["oldest"]),
        "active": figures["active"],
        "in_ivr": in_ivr,
        "people": people + figures["callers"],
        "answered_hour": figures["answered"],
        "abandoned_hour": figures["abandoned"],
        "failed_actions_hour": failed,
        "avg_handle_seconds": _seconds(handle),
    }


def _seconds(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return round(value.total_seconds())
    return round(float(value) / 1_000_000)  # a backend that averages microseconds
