"""The auditors' reports: aggregates of calls and actions over a date range.

Everything here only reads, in a fixed number of set-based queries whatever the
number of calls: every query filters calls on ``created_at`` (``call_history_start_idx``)
or ``terminated_at`` (``call_terminated_idx``), actions on ``status, created_at``
(``action_status_created_idx``) or through their call (``action_call_status_idx``).
The SQL is portable: the same queries run on SQLite and PostgreSQL.

Each report is a ``Table`` (columns and rows), which the page draws as a chart, lists
under the chart's "numbers" and writes as CSV: one source for all three.

Definitions (also shown on the page, ``DEFINITIONS``):

- A call belongs to the range when it was *created* in it (Microsoft told us of it,
  or we placed it); buckets are the viewer's local hours and days.
- answered: reached ``established``; abandoned: the history's outcome
  (``states.call_outcome``): incoming, ended without being established (rang out
  or the caller hung up) and not rejected or redirected by Callbot; rejected,
  redirected, transferred: a completed Action of that kind.
- concurrency: a call runs from its creation to its end (``terminated_at``); a call
  still live runs on. Calls that ended without a recorded end time are left out.
- the IVR funnel counts calls that an answering policy put into a flow (an IVR
  session), stage by stage; each stage also requires the ones before it.

Must not write and must not import the views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import ExtractHour, TruncDay, TruncHour
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from callbot.calls.models import Action, Call, Participant
from callbot.calls.states import ActionStatus, CallOutcome, CallState
from dashboard.permissions import UserLike, can_view

# A longer range would make hourly or daily buckets past reading, and a scan of a
# year of calls is what an export job is for, not a page.
MAX_DAYS = 92
# Ranges up to this long are drawn by the hour, longer ones by the day.
HOURLY_UP_TO_DAYS = 2
TOP_MEETINGS = 10
TOP_FAILURES = 15

# (label, lower bound in seconds, upper bound in seconds or None): [lower, upper).
DURATION_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("under 30 s", 0, 30),
    ("30 s to 1 min", 30, 60),
    ("1-3 min", 60, 180),
    ("3-10 min", 180, 600),
    ("10-30 min", 600, 1800),
    ("30-60 min", 1800, 3600),
    ("1 h or more", 3600, None),
)

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("In the range", "created (rung in, placed or joined) between the two dates"),
    ("Answered", "reached the established state"),
    (
        "Abandoned",
        "incoming, ended before it was established, and not rejected or "
        "redirected by us (the caller hung up or Teams gave up)",
    ),
    ("Rejected / redirected", "a reject or redirect of ours that completed"),
    ("Transferred", "a transfer that completed (these calls were answered first)"),
    (
        "Duration",
        "from established to ended, for answered calls that ended; "
        "each bucket includes its lower bound",
    ),
    (
        "Concurrent calls",
        "calls between creation and end, live ones included; the peak is the "
        "most at any instant of the range",
    ),
    ("IVR: into a flow", "an answering call policy started an IVR flow on the call"),
    ("IVR: answered", "… and the call was established"),
    ("IVR: heard the menu", "… and the flow asked Teams to play a prompt"),
    ("IVR: chose an option", "… and the caller pressed a key (a tone arrived)"),
    ("IVR: transferred", "… and a transfer completed"),
    ("IVR: hung up", "… and the call ended without a completed transfer"),
    (
        "Failed actions",
        "requests to Graph made in the range that failed, by Graph's result code "
        "(the HTTP status, or the operation's resultInfo code) and error",
    ),
    ("Busiest meetings", "meetings with the most calls in the range"),
)


class PeriodError(ValueError):
    """A date range that cannot be reported on; the message says why."""


@dataclass(frozen=True)
class Period:
    """Whole local days ``first``..``last`` (inclusive) in ``tz``."""

    first: date
    last: date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError("The end date is before the start date.")
        if self.days > MAX_DAYS:
            raise PeriodError(f"Choose at most {MAX_DAYS} days.")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, datetime.min.time(), self.tz)

    @property
    def end(self) -> datetime:
        """Exclusive: the next local midnight after ``last``."""
        return datetime.combine(
            self.last + timedelta(days=1), datetime.min.time(), self.tz
        )

    @property
    def hourly(self) -> bool:
        return self.days <= HOURLY_UP_TO_DAYS


PRESETS: dict[str, str] = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
}


def preset_period(preset: str, today: date, tz: ZoneInfo) -> Period:
    """The period a preset names, ending ``today`` (in ``tz``); raises PeriodError."""
    if preset == "today":
        return Period(today, today, tz)
    if preset == "yesterday":
        yesterday = today - timedelta(days=1)
        return Period(yesterday, yesterday, tz)
    if preset == "7d":
        return Period(today - timedelta(days=6), today, tz)
    if preset == "30d":
        return Period(today - timedelta(days=29), today, tz)
    raise PeriodError(f"Unknown preset {preset!r}.")


@dataclass
class Table:
    """One report: named columns and rows of plain values (str, int, float, None)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def column(self, index: int) -> list[Any]:
        return [row[index] for row in self.rows]


@dataclass(frozen=True)
class Peak:
    calls: int
    bucket: str | None  # the first bucket (hour or day) it was reached in


@dataclass
class Report:
    period: Period
    totals: dict[str, int]
    peak: Peak
    tables: dict[str, Table]


# --- scope ----------------------------------------------------------------------------


def sees_every_call(user: UserLike) -> bool:
    """``snapshots.access_call``'s rule: whoever may view calls may see every call
    (auditors, supervisors and admins alike)."""
    return can_view(user)


def visible_calls(user: UserLike) -> QuerySet[Call]:
    """The calls ``user`` may see in reports, by ``sees_every_call``."""
    if sees_every_call(user):
        return Call.objects.all()
    return Call.objects.none()


def _in_range(calls: QuerySet[Call], period: Period) -> QuerySet[Call]:
    return calls.filter(created_at__gte=period.start, created_at__lt=period.end)


def _has_action(kind: str, *, completed: bool = True, **where: Any) -> Exists:
    """The call has an Action of ``kind`` (a completed one, or any with
    ``completed=False``) matching ``where``.

    A correlated EXISTS on purpose: one probe of ``action_call_status_idx`` per call
    of the range, so the work grows with the range, never with the history. A
    join or an IN over the actions let PostgreSQL's planner prefer a scan of every
    action ever made (measured: 0.5 s for a week over 293,000 actions, growing
    with them), where the probes take about 10 microseconds a call.
    """
    if completed:
        where["status"] = ActionStatus.COMPLETED
    return Exists(Action.objects.filter(call=OuterRef("pk"), kind=kind, **where))


# --- the reports ----------------------------------------------------------------------


def calls_over_time(calls: QuerySet[Call], period: Period) -> Table:
    """Calls created per local hour (short ranges) or day, empty buckets included."""
    trunc = TruncHour if period.hourly else TruncDay
    counted = dict(
        _in_range(calls, period)
        .annotate(bucket=trunc("created_at", tzinfo=period.tz))
        .order_by()
        .values("bucket")
        .annotate(n=Count("pk"))
        .values_list("bucket", "n")
    )
    # The database hands buckets back as aware datetimes at the local boundary;
    # key them by their local wall time, which is what the buckets below are.
    by_wall = {
        timezone.localtime(key, period.tz).replace(tzinfo=None): n
        for key, n in counted.items()
    }
    table = Table(
        "calls_over_time",
        "Calls per hour" if period.hourly else "Calls per day",
        ["Starts", "Calls"],
    )
    for wall in _buckets(period):
        label = wall.strftime("%Y-%m-%d %H:00" if period.hourly else "%Y-%m-%d")
        table.rows.append([label, by_wall.get(wall, 0)])
    return table


def _buckets(period: Period) -> Iterable[datetime]:
    """Local wall-clock bucket starts. Hours step in UTC, so a day when clocks change
    has 23 or 25 hourly buckets (a repeated hour appears once per its UTC hour)."""
    if not period.hourly:
        for offset in range(period.days):
            yield datetime.combine(
                period.first + timedelta(days=offset), datetime.min.time()
            )
        return
    moment = period.start.astimezone(ZoneInfo("UTC"))
    end = period.end
    seen: set[datetime] = set()
    while moment < end:
        wall = moment.astimezone(period.tz).replace(minute=0, second=0, tzinfo=None)
        if wall not in seen:
            seen.add(wall)
            yield wall
        moment += timedelta(hours=1)


def hour_of_day(calls: QuerySet[Call], period: Period) -> Table:
    """Calls created per local hour of the day (0 to 23) across the whole range."""
    counted = dict(
        _in_range(calls, period)
        .annotate(hour=ExtractHour("created_at", tzinfo=period.tz))
        .order_by()
        .values("hour")
        .annotate(n=Count("pk"))
        .values_list("hour", "n")
    )
    table = Table("hour_of_day", "Calls by hour of the day", ["Hour", "Calls"])
    table.rows = [[f"{hour:02d}:00", counted.get(hour, 0)] for hour in range(24)]
    return table


def outcomes(calls: QuerySet[Call], period: Period) -> Table:
    """Calls of the range by outcome, in one query (see the module's definitions)."""
    counts = _in_range(calls, period).aggregate(
        total=Count("pk"),
        answered=Count("pk", filter=Q(established_at__isnull=False)),
        # The history's classification (``states.call_outcome``), stored.
        abandoned=Count("pk", filter=Q(outcome=CallOutcome.ABANDONED)),
        rejected=Count("pk", filter=Q(_has_action(Action.Kind.REJECT))),
        redirected=Count("pk", filter=Q(_has_action(Action.Kind.REDIRECT))),
        transferred=Count("pk", filter=Q(_has_action(Action.Kind.TRANSFER))),
    )
    table = Table("outcomes", "Outcomes", ["Outcome", "Calls", "Share of calls"])
    total = counts["total"]
    for key, label in (
        ("answered", "Answered"),
        ("abandoned", "Abandoned"),
        ("rejected", "Rejected"),
        ("redirected", "Redirected"),
        ("transferred", "Transferred"),
    ):
        table.rows.append([label, counts[key], _share(counts[key], total)])
    return table


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else ""


def durations(calls: QuerySet[Call], period: Period) -> Table:
    """Answered calls that ended, by duration bucket, in one grouped query (the
    duration is computed once per call, in a CASE over the bucket bounds)."""
    length = ExpressionWrapper(
        F("terminated_at") - F("established_at"), output_field=DurationField()
    )
    bucket = Case(
        *(
            When(length__lt=timedelta(seconds=high), then=Value(index))
            for index, (_label, _low, high) in enumerate(DURATION_BUCKETS)
            if high is not None
        ),
        default=Value(len(DURATION_BUCKETS) - 1),
        output_field=IntegerField(),
    )
    counted = dict(
        _in_range(calls, period)
        .filter(established_at__isnull=False, terminated_at__isnull=False)
        .annotate(length=length)
        .annotate(bucket=bucket)
        .order_by()
        .values("bucket")
        .annotate(n=Count("pk"))
        .values_list("bucket", "n")
    )
    table = Table("durations", "Call duration", ["Duration", "Calls"])
    table.rows = [
        [label, counted.get(index, 0)]
        for index, (label, _low, _high) in enumerate(DURATION_BUCKETS)
    ]
    return table


def concurrency(calls: QuerySet[Call], period: Period) -> Table:
    """The most calls running at once, over the range and per bucket (hour or day).

    1. Count the calls already running at the range's start (created before it,
       ending after it or not yet).
    2. Sweep the range's events in SQL: +1 at each creation, -1 at each end, ends
       before starts at the same instant (a call ending as another begins is not an
       overlap); a window function keeps the running sum. Grouped by local bucket,
       the database returns per bucket the highest running sum, the net change and
       the first instant of that highest sum: one row per bucket, never per call.
    3. Walk the buckets in order carrying the level: a bucket's peak is the larger
       of the level it starts with and its highest running sum.
    """
    start, end = period.start, period.end
    running_at_start = (
        calls.filter(created_at__lt=start)
        .filter(
            Q(terminated_at__gte=start)
            | (Q(terminated_at__isnull=True) & ~Q(state=CallState.TERMINATED))
        )
        .count()
    )
    one: IntegerField[int, int] = IntegerField()
    starts = (
        calls.filter(created_at__gte=start, created_at__lt=end)
        .exclude(terminated_at__isnull=True, state=CallState.TERMINATED)
        .order_by()
        .annotate(moment=F("created_at"), delta=Value(1, output_field=one))
        .values_list("moment", "delta")
    )
    ends = (
        calls.filter(terminated_at__gte=start, terminated_at__lt=end)
        .order_by()
        .annotate(moment=F("terminated_at"), delta=Value(-1, output_field=one))
        .values_list("moment", "delta")
    )
    try:
        events_sql, events_params = starts.union(ends, all=True).query.sql_with_params()
    except EmptyResultSet:  # the viewer sees no call at all
        events_sql, events_params = "", ()
    # django-stubs still describes the pre-5.0 signature (one string back).
    truncated: tuple[str, tuple[Any, ...]] = connection.ops.datetime_trunc_sql(  # type: ignore[assignment]
        "hour" if period.hourly else "day", "sweep.moment", (), period.tz.key
    )
    bucket_sql, bucket_params = truncated
    # Only SQL that Django's compiler and ops wrote is spliced in; values are params.
    sql = (
        f"SELECT {bucket_sql} AS bucket, MAX(sweep.running), SUM(sweep.delta),"  # noqa: S608
        " MIN(sweep.moment)"
        " FROM ("
        "  SELECT ev.moment AS moment, ev.delta AS delta,"
        "   SUM(ev.delta) OVER (ORDER BY ev.moment, ev.delta"
        "    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running"
        f"  FROM (SELECT * FROM ({events_sql}) AS events) AS ev"
        " ) AS sweep GROUP BY 1 ORDER BY 1"
    )
    rows: list[tuple[Any, ...]] = []
    if events_sql:
        with connection.cursor() as cursor:
            cursor.execute(sql, (*bucket_params, *events_params))
            rows = cursor.fetchall()
    by_wall = {
        _wall(bucket): (int(high), int(net), _moment(first))
        for bucket, high, net, first in rows
    }
    table = Table(
        "concurrency",
        "Peak concurrent calls per hour"
        if period.hourly
        else "Peak concurrent calls per day",
        ["Starts", "Peak calls"],
    )
    level = running_at_start
    now = timezone.now()
    for wall in _buckets(period):
        label = wall.strftime("%Y-%m-%d %H:00" if period.hourly else "%Y-%m-%d")
        if timezone.make_aware(wall, period.tz) > now:
            # Live calls would run on into hours that have not come: leave them blank.
            table.rows.append([label, None])
            continue
        peak = level
        if wall in by_wall:
            high, net, first = by_wall[wall]
            # The level carried in holds until the bucket's first event, unless
            # that event is at the bucket's very start.
            if first <= timezone.make_aware(wall, period.tz):
                peak = running_at_start + high
            else:
                peak = max(level, running_at_start + high)
            level += net
        table.rows.append([label, peak])
    return table


def peak_of(table: Table) -> Peak:
    """The highest peak of a ``concurrency`` table and the first bucket it is in."""
    best = Peak(0, None)
    for label, calls in table.rows:
        if calls is not None and calls > best.calls:
            best = Peak(calls, label)
    return best


def _moment(value: Any) -> datetime:
    """An event time from raw SQL: aware (PostgreSQL) or UTC text (SQLite)."""
    moment = _wall(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment


def _wall(value: Any) -> datetime:
    """A bucket from raw SQL as naive local wall time: PostgreSQL answers a
    ``timestamp``, SQLite text."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a timestamp: {value!r}")
        value = parsed
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=None)


def ivr_funnel(calls: QuerySet[Call], period: Period) -> Table:
    """How far calls put into an IVR flow went, stage by stage, in one query."""
    in_flow = _in_range(calls, period).filter(ivr__isnull=False)
    prompted = _has_action(
        Action.Kind.PLAY_PROMPT, completed=False, requested_by__isnull=True
    )
    transfer = Q(_has_action(Action.Kind.TRANSFER))
    answered = Q(established_at__isnull=False)
    menu = answered & Q(prompted)
    option = menu & Q(last_tone_sequence__isnull=False)
    transferred = option & transfer
    hung_up = option & Q(state=CallState.TERMINATED) & ~transfer
    counts = in_flow.aggregate(
        entered=Count("pk"),
        answered=Count("pk", filter=answered),
        menu=Count("pk", filter=menu),
        option=Count("pk", filter=option),
        transferred=Count("pk", filter=transferred),
        hung_up=Count("pk", filter=hung_up),
    )
    table = Table("ivr_funnel", "IVR funnel", ["Stage", "Calls", "Share of entered"])
    entered = counts["entered"]
    for key, label in (
        ("entered", "Into a flow"),
        ("answered", "Answered"),
        ("menu", "Heard the menu"),
        ("option", "Chose an option"),
        ("transferred", "Transferred"),
        ("hung_up", "Hung up"),
    ):
        table.rows.append([label, counts[key], _share(counts[key], entered)])
    return table


def failed_actions(calls: QuerySet[Call], period: Period, *, everything: bool) -> Table:
    """Failed actions requested in the range, by Graph result code and error.

    ``everything`` says the viewer sees every call; actions without a call (creating
    an online meeting) are counted only then.
    """
    failed = Action.objects.filter(
        status=ActionStatus.FAILED,
        created_at__gte=period.start,
        created_at__lt=period.end,
    )
    if not everything:
        failed = failed.filter(call__in=calls)
    grouped = list(
        failed.order_by()
        .values("result_code", "result_subcode", "error_code", "kind")
        .annotate(n=Count("pk"))
    )
    merged: dict[tuple[Any, Any, str], dict[str, int]] = {}
    for row in grouped:
        key = (row["result_code"], row["result_subcode"], row["error_code"])
        merged.setdefault(key, {})[row["kind"]] = row["n"]
    ranked = sorted(
        merged.items(),
        # Most failures first; ties by code, actions without a code last.
        key=lambda item: (
            -sum(item[1].values()),
            item[0][0] is None,
            item[0][0] or 0,
            item[0][1] or 0,
            item[0][2],
        ),
    )
    table = Table(
        "failed_actions",
        "Failed actions by Graph result code",
        ["Result code", "Subcode", "Error", "Actions", "Kinds"],
    )
    for (code, subcode, error), kinds in ranked[:TOP_FAILURES]:
        spread = ", ".join(
            f"{kind} {n}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1])
        )
        table.rows.append([code, subcode, error, sum(kinds.values()), spread])
    rest = ranked[TOP_FAILURES:]
    if rest:
        others = sum(sum(kinds.values()) for _key, kinds in rest)
        table.rows.append(["other", None, f"{len(rest)} more codes", others, ""])
    return table


def busiest_meetings(calls: QuerySet[Call], period: Period) -> Table:
    """The meetings with the most calls in the range, with their joins and talk time."""
    in_meetings = _in_range(calls, period).filter(meeting__isnull=False)
    talk = ExpressionWrapper(
        F("terminated_at") - F("established_at"), output_field=DurationField()
    )
    top = list(
        in_meetings.order_by()
        .values("meeting_id", "meeting__subject")
        .annotate(
            n=Count("pk"),
            talk=Sum(
                talk,
                filter=Q(established_at__isnull=False, terminated_at__isnull=False),
            ),
        )
        .order_by("-n", "meeting_id")[:TOP_MEETINGS]
    )
    ids = [row["meeting_id"] for row in top]
    joins = dict(
        Participant.objects.filter(
            call__in=in_meetings.filter(meeting_id__in=ids), is_bot=False
        )
        .order_by()
        .values("call__meeting_id")
        .annotate(n=Count("pk"))
        .values_list("call__meeting_id", "n")
    )
    table = Table(
        "busiest_meetings",
        "Busiest meetings",
        ["Meeting", "Id", "Calls", "Participant joins", "Connected minutes"],
    )
    for row in top:
        talk_time: timedelta | None = row["talk"]
        minutes = round(talk_time.total_seconds() / 60, 1) if talk_time else 0.0
        subject = row["meeting__subject"] or f"Meeting {row['meeting_id']}"
        table.rows.append(
            [
                subject,
                row["meeting_id"],
                row["n"],
                joins.get(row["meeting_id"], 0),
                minutes,
            ]
        )
    return table


REPORT_NAMES: Sequence[str] = (
    "calls_over_time",
    "concurrency",
    "hour_of_day",
    "outcomes",
    "durations",
    "ivr_funnel",
    "failed_actions",
    "busiest_meetings",
)


def build_report(user: UserLike, period: Period, only: str | None = None) -> Report:
    """Every report for ``user`` over ``period`` (or just the one named ``only``).

    Raises KeyError for an unknown ``only``.
    """
    if only is not None and only not in REPORT_NAMES:
        raise KeyError(only)
    calls = visible_calls(user)
    everything = sees_every_call(user)
    makers: dict[str, Callable[[], Table]] = {
        "calls_over_time": lambda: calls_over_time(calls, period),
        "concurrency": lambda: concurrency(calls, period),
        "hour_of_day": lambda: hour_of_day(calls, period),
        "outcomes": lambda: outcomes(calls, period),
        "durations": lambda: durations(calls, period),
        "ivr_funnel": lambda: ivr_funnel(calls, period),
        "failed_actions": lambda: failed_actions(calls, period, everything=everything),
        "busiest_meetings": lambda: busiest_meetings(calls, period),
    }
    names = [only] if only is not None else list(REPORT_NAMES)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The planner's estimate for a month of calls passes jit_above_cost,
            # and compiling then took 2.3 s of a 2.7 s query (measured over
            # 200,000 calls); these short index-driven scans never repay it.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        tables = {name: makers[name]() for name in names}
    totals: dict[str, int] = {}
    if "outcomes" in tables:
        for label, calls_n, _share_text in tables["outcomes"].rows:
            totals[str(label).lower()] = int(calls_n)
    if "calls_over_time" in tables:
        totals["calls"] = sum(tables["calls_over_time"].column(1))
    peak = peak_of(tables["concurrency"]) if "concurrency" in tables else Peak(0, None)
    return Report(period=period, totals=totals, peak=peak, tables=tables)
