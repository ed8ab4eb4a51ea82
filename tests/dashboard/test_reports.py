"""Reports: each aggregate against calls built by hand and counted by hand, local
time-zone buckets, empty ranges, bad ranges, roles, CSV content and its audit."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.test import Client
from django.utils import timezone

import pytest

from callbot.calls.models import Action, AuditEntry, Call
from callbot.calls.states import ActionStatus, CallDirection, CallState
from callbot.ivr.models import IvrSession
from dashboard import reports
from dashboard.reports import Period
from tests.factories import (
    ActionFactory,
    CallFactory,
    MeetingFactory,
    ParticipantFactory,
)

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
DAY = date(2026, 3, 2)  # a Monday; Paris is UTC+1 (summer time starts 29 March)
ONE_DAY = Period(DAY, DAY, UTC)


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def make_call(
    created: datetime,
    *,
    established: datetime | None = None,
    terminated: datetime | None = None,
    direction: str = CallDirection.INCOMING,
    state: str | None = None,
    **fields: Any,
) -> Call:
    """A call with the given times; ``created_at`` is set after the insert
    (``auto_now_add`` ignores a value given on create)."""
    if state is None:
        if terminated is not None:
            state = CallState.TERMINATED
        elif established is not None:
            state = CallState.ESTABLISHED
        else:
            state = CallState.INCOMING
    call: Call = CallFactory(
        direction=direction,
        state=state,
        established_at=established,
        terminated_at=terminated,
        **fields,
    )
    Call.objects.filter(pk=call.pk).update(created_at=created)
    call.created_at = created
    return call


def act(
    call: Call | None, kind: str, status: str = ActionStatus.COMPLETED, **fields: Any
) -> Action:
    completed = (
        at(12) if status in (ActionStatus.COMPLETED, ActionStatus.FAILED) else None
    )
    action: Action = ActionFactory(
        call=call, kind=kind, status=status, completed_at=completed, **fields
    )
    return action


def rows(table: reports.Table) -> dict[Any, list[Any]]:
    return {row[0]: row[1:] for row in table.rows}


def everyone() -> Any:
    return Call.objects.all()


# --- outcomes ---------------------------------------------------------------------------


def test_outcomes_count_each_definition_once() -> None:
    answered = make_call(at(10), established=at(10, 0, 5), terminated=at(10, 5))
    make_call(at(10, 1), terminated=at(10, 2))  # abandoned: the caller gave up
    rejected = make_call(at(10, 2), terminated=at(10, 3))
    act(rejected, Action.Kind.REJECT)
    rejected.save(update_fields=["state"])  # Teams ends it after the reject
    redirected = make_call(at(10, 3), terminated=at(10, 4))
    act(redirected, Action.Kind.REDIRECT)
    redirected.save(update_fields=["state"])
    transferred = make_call(at(10, 4), established=at(10, 5), terminated=at(10, 9))
    act(transferred, Action.Kind.TRANSFER)
    # Outgoing and not answered: not abandoned (nobody waited on us).
    make_call(at(11), terminated=at(11, 1), direction=CallDirection.OUTGOING)
    make_call(at(11, 30))  # still ringing: not abandoned yet
    refused_reject = make_call(at(12), terminated=at(12, 1))
    act(refused_reject, Action.Kind.REJECT, ActionStatus.FAILED)  # abandoned after all
    # A completed reject on an answered call does not make it abandoned either way.
    act(answered, Action.Kind.PLAY_PROMPT)
    make_call(at(23, 59, day=DAY - timedelta(days=1)), terminated=at(0, 1))  # before

    table = reports.outcomes(everyone(), ONE_DAY)

    assert rows(table) == {
        "Answered": [2, "25.0 %"],
        "Abandoned": [2, "25.0 %"],
        "Rejected": [1, "12.5 %"],
        "Redirected": [1, "12.5 %"],
        "Transferred": [1, "12.5 %"],
    }


def test_durations_fall_in_buckets_that_include_their_lower_bound() -> None:
    start = at(9)
    for seconds in (0, 29, 30, 59, 60, 179, 180, 600, 1800, 3599, 3600, 7200):
        make_call(
            start, established=start, terminated=start + timedelta(seconds=seconds)
        )
    make_call(start, established=start)  # still talking: no duration yet
    make_call(start, terminated=start + timedelta(seconds=40))  # never answered

    table = reports.durations(everyone(), ONE_DAY)

    assert table.rows == [
        ["under 30 s", 2],
        ["30 s to 1 min", 2],
        ["1-3 min", 2],
        ["3-10 min", 1],
        ["10-30 min", 1],
        ["30-60 min", 2],
        ["1 h or more", 2],
    ]


# --- time buckets -----------------------------------------------------------------------


def test_hourly_buckets_are_the_viewers_local_hours() -> None:
    make_call(at(23, 30, day=DAY - timedelta(days=1)))  # 00:30 in Paris on the 2nd
    make_call(at(8, 10))  # 09:10 in Paris
    make_call(at(8, 50))  # 09:50 in Paris
    make_call(at(22, 59))  # 23:59 in Paris
    make_call(at(23, 0))  # 00:00 on the 3rd in Paris: outside
    make_call(at(22, 59, day=DAY - timedelta(days=1)))  # 23:59 on the 1st: outside

    paris = reports.calls_over_time(everyone(), Period(DAY, DAY, PARIS))
    utc = reports.calls_over_time(everyone(), ONE_DAY)

    assert len(paris.rows) == 24
    assert {label: n for label, n in paris.rows if n} == {
        "2026-03-02 00:00": 1,
        "2026-03-02 09:00": 2,
        "2026-03-02 23:00": 1,
    }
    assert {label: n for label, n in utc.rows if n} == {
        "2026-03-02 08:00": 2,
        "2026-03-02 22:00": 1,
        "2026-03-02 23:00": 1,
    }
    by_hour = reports.hour_of_day(everyone(), Period(DAY, DAY, PARIS))
    assert by_hour.rows[0] == ["00:00", 1]
    assert by_hour.rows[9] == ["09:00", 2]
    assert sum(by_hour.column(1)) == 4


def test_daily_buckets_cover_every_day_of_the_range_in_local_time() -> None:
    make_call(at(23, 30, day=date(2026, 3, 3)))  # the 4th in Paris
    make_call(at(1, day=date(2026, 3, 3)))
    make_call(at(12, day=date(2026, 3, 8)))
    week = Period(date(2026, 3, 2), date(2026, 3, 8), PARIS)

    table = reports.calls_over_time(everyone(), week)

    assert table.title == "Calls per day"
    assert table.rows == [
        ["2026-03-02", 0],
        ["2026-03-03", 1],
        ["2026-03-04", 1],
        ["2026-03-05", 0],
        ["2026-03-06", 0],
        ["2026-03-07", 0],
        ["2026-03-08", 1],
    ]


def test_the_day_clocks_go_forward_has_twenty_three_hours() -> None:
    spring = date(2026, 3, 29)
    make_call(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 summer time

    table = reports.calls_over_time(everyone(), Period(spring, spring, PARIS))

    assert len(table.rows) == 23
    assert "2026-03-29 02:00" not in rows(table)
    assert rows(table)["2026-03-29 03:00"] == [1]


# --- concurrency ------------------------------------------------------------------------


def test_peak_concurrency_sweeps_starts_and_ends() -> None:
    # Running since the day before, still live: one call all day.
    make_call(
        at(23, day=DAY - timedelta(days=1)),
        established=at(23, day=DAY - timedelta(days=1)),
    )
    # Ended the day before: never counted.
    make_call(
        at(20, day=DAY - timedelta(days=1)),
        terminated=at(21, day=DAY - timedelta(days=1)),
    )
    make_call(at(10), terminated=at(10, 30))  # A
    make_call(at(10, 10), terminated=at(10, 20))  # B, inside A
    # C starts as B ends (no overlap with B) and ends on the hour.
    make_call(at(10, 20), terminated=at(11))
    # Terminated without an end time: left out.
    make_call(at(15), state=CallState.TERMINATED)

    table = reports.concurrency(everyone(), ONE_DAY)
    peaks = rows(table)

    assert len(table.rows) == 24
    assert peaks["2026-03-02 09:00"] == [1]
    assert peaks["2026-03-02 10:00"] == [3]  # the live call, A and B
    assert peaks["2026-03-02 11:00"] == [1]  # C ended at 11:00 sharp
    assert peaks["2026-03-02 15:00"] == [1]
    assert reports.peak_of(table) == reports.Peak(3, "2026-03-02 10:00")


def test_concurrency_by_day_carries_calls_across_midnight() -> None:
    make_call(at(22), terminated=at(2, day=DAY + timedelta(days=1)))
    make_call(at(23), terminated=at(1, day=DAY + timedelta(days=1)))
    make_call(
        at(5, day=DAY + timedelta(days=2)),
        terminated=at(6, day=DAY + timedelta(days=2)),
    )

    table = reports.concurrency(everyone(), Period(DAY, DAY + timedelta(days=3), UTC))

    assert table.rows == [
        ["2026-03-02", 2],
        ["2026-03-03", 2],
        ["2026-03-04", 1],
        ["2026-03-05", 0],
    ]


def test_hours_still_to_come_have_no_concurrency_yet() -> None:
    now = timezone.now()
    # Started in the current hour (not "five minutes ago", which at 05:03
    # is the hour before and makes two hours peak at once).
    started = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    make_call(started, established=started)
    today = now.astimezone(UTC).date()

    table = reports.concurrency(everyone(), Period(today, today, UTC))

    current = now.astimezone(UTC).strftime("%Y-%m-%d %H:00")
    peaks = rows(table)
    assert peaks[current] == [1]
    assert all(value == [None] for label, value in peaks.items() if label > current)
    assert reports.peak_of(table) == reports.Peak(1, current)


# --- IVR ------------------------------------------------------------------------------


def in_flow(call: Call) -> Call:
    IvrSession.objects.create(call=call, flow_start="menu", flow_steps=[])
    return call


def test_the_ivr_funnel_nests_each_stage_in_the_one_before(alice: Any) -> None:
    in_flow(make_call(at(9), terminated=at(9, 1)))  # hung up while ringing
    in_flow(make_call(at(9), established=at(9), terminated=at(9, 1)))  # no prompt
    menu_only = in_flow(make_call(at(9), established=at(9), terminated=at(9, 2)))
    act(menu_only, Action.Kind.PLAY_PROMPT)
    hung_up = in_flow(
        make_call(at(9), established=at(9), terminated=at(9, 3), last_tone_sequence=1)
    )
    act(hung_up, Action.Kind.PLAY_PROMPT)
    transferred = in_flow(
        make_call(at(9), established=at(9), terminated=at(9, 4), last_tone_sequence=2)
    )
    act(transferred, Action.Kind.PLAY_PROMPT)
    act(transferred, Action.Kind.TRANSFER)
    # A supervisor's prompt is not the flow's menu.
    by_hand = in_flow(make_call(at(9), established=at(9), last_tone_sequence=1))
    act(by_hand, Action.Kind.PLAY_PROMPT, requested_by=alice)
    # Not in a flow: not in the funnel at all.
    outside = make_call(at(9), established=at(9), last_tone_sequence=1)
    act(outside, Action.Kind.PLAY_PROMPT)

    table = reports.ivr_funnel(everyone(), ONE_DAY)

    assert rows(table) == {
        "Into a flow": [6, "100.0 %"],
        "Answered": [5, "83.3 %"],
        "Heard the menu": [3, "50.0 %"],
        "Chose an option": [2, "33.3 %"],
        "Transferred": [1, "16.7 %"],
        "Hung up": [1, "16.7 %"],
    }


# --- failures and meetings -----------------------------------------------------------


def failed(call: Call | None, kind: str, created: datetime, **fields: Any) -> None:
    action = act(call, kind, ActionStatus.FAILED, **fields)
    Action.objects.filter(pk=action.pk).update(created_at=created)


def test_failed_actions_are_grouped_by_result_code_and_error() -> None:
    call = make_call(at(9), established=at(9))
    failed(
        call, Action.Kind.PLAY_PROMPT, at(9, 1), result_code=403, error_code="graph_403"
    )
    failed(
        call, Action.Kind.TRANSFER, at(9, 2), result_code=403, error_code="graph_403"
    )
    failed(
        call, Action.Kind.PLAY_PROMPT, at(9, 3), result_code=403, error_code="graph_403"
    )
    failed(call, Action.Kind.TRANSFER, at(9, 4), result_code=500, result_subcode=8510)
    failed(None, Action.Kind.CREATE_ONLINE_MEETING, at(9, 5), error_code="invalid")
    failed(
        call, Action.Kind.HANG_UP, at(9, day=DAY - timedelta(days=1)), result_code=404
    )
    act(call, Action.Kind.MUTE_BOT)  # completed: not a failure

    table = reports.failed_actions(everyone(), ONE_DAY, everything=True)

    assert table.rows == [
        [403, None, "graph_403", 3, "play_prompt 2, transfer 1"],
        [500, 8510, "", 1, "transfer 1"],
        [None, None, "invalid", 1, "create_online_meeting 1"],
    ]
    narrowed = reports.failed_actions(everyone(), ONE_DAY, everything=False)
    assert [row[3] for row in narrowed.rows] == [3, 1]


def test_busiest_meetings_rank_by_calls_with_joins_and_connected_time() -> None:
    busy, quiet, elsewhere = (
        MeetingFactory(subject="Standup"),
        MeetingFactory(),
        MeetingFactory(),
    )
    first = make_call(at(9), established=at(9), terminated=at(9, 10), meeting=busy)
    make_call(at(10), established=at(10), terminated=at(10, 5), meeting=busy)
    make_call(at(11), meeting=busy)
    make_call(at(12), established=at(12), terminated=at(12, 1), meeting=quiet)
    make_call(at(9, day=DAY - timedelta(days=1)), meeting=elsewhere)
    ParticipantFactory.create_batch(2, call=first)
    ParticipantFactory(call=first, is_bot=True)

    table = reports.busiest_meetings(everyone(), ONE_DAY)

    assert table.rows == [
        ["Standup", busy.pk, 3, 2, 15.0],
        [quiet.subject, quiet.pk, 1, 0, 1.0],
    ]


# --- the whole report, ranges ---------------------------------------------------------


def test_an_empty_range_reports_zeros_everywhere(alice: Any) -> None:
    report = reports.build_report(alice, Period(DAY, DAY + timedelta(days=6), UTC))

    assert report.totals == {
        "answered": 0,
        "abandoned": 0,
        "rejected": 0,
        "redirected": 0,
        "transferred": 0,
        "calls": 0,
    }
    assert report.peak == reports.Peak(0, None)
    assert report.tables["calls_over_time"].column(1) == [0] * 7
    assert report.tables["failed_actions"].rows == []
    assert report.tables["busiest_meetings"].rows == []


def test_ranges_that_cannot_be_reported_are_refused() -> None:
    with pytest.raises(reports.PeriodError, match="before the start"):
        Period(DAY, DAY - timedelta(days=1), UTC)
    with pytest.raises(reports.PeriodError, match="at most 92 days"):
        Period(DAY, DAY + timedelta(days=92), UTC)
    assert reports.preset_period("7d", DAY, UTC) == Period(date(2026, 2, 24), DAY, UTC)
    assert reports.preset_period("yesterday", DAY, UTC).first == date(2026, 3, 1)


# --- the page, its CSV, roles ---------------------------------------------------------

QUERY = "?start=2026-03-02&end=2026-03-02&tz=UTC"
URLS = ["/reports/", *(f"/reports/{name}.csv" for name in reports.REPORT_NAMES)]


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_signed_out_visitors_are_sent_to_sign_in_from_every_report_url(
    client: Client,
) -> None:
    for url in URLS:
        response = client.get(url + QUERY)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"/accounts/login/?next={url}")
    assert not AuditEntry.objects.filter(action__startswith="export.").exists()


def test_an_account_without_a_role_gets_403_on_every_report_url(dave: Any) -> None:
    for url in URLS:
        assert signed_in(dave).get(url + QUERY).status_code == 403, url
    # Signing in is an audit entry; a refused report is no export.
    assert not AuditEntry.objects.filter(action__startswith="export.").exists()


@pytest.mark.parametrize("who", ["alice", "ada", "bob", "carol"])
def test_auditors_supervisors_and_admins_read_every_report(
    who: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(who)
    make_call(at(10), established=at(10), terminated=at(10, 2))
    client = signed_in(user)
    for url in URLS:
        response = client.get(url + QUERY)
        assert response.status_code == 200, url
    page = client.get("/reports/" + QUERY)
    assert b'aria-current="page">Reports' in page.content
    assert b"Calls per hour" in page.content
    exports = AuditEntry.objects.filter(action="export.report", actor=user)
    assert sorted(exports.values_list("target", flat=True)) == sorted(
        reports.REPORT_NAMES
    )
    entry = exports.get(target="outcomes")
    assert entry.outcome == "ok"
    assert entry.detail == {
        "report": "outcomes",
        "start": "2026-03-02",
        "end": "2026-03-02",
        "tz": "UTC",
        "rows": 5,
    }


def test_supervisors_and_auditors_report_over_the_calls_they_may_see(
    alice: Any, bob: Any, carol: Any, dave: Any
) -> None:
    make_call(at(10), established=at(10), terminated=at(10, 2))
    make_call(at(11), terminated=at(11, 1), meeting=MeetingFactory())

    # access_call lets every viewer see every call: the same report for each role.
    totals = [
        reports.build_report(user, ONE_DAY).totals for user in (alice, bob, carol)
    ]
    assert totals[0] == totals[1] == totals[2]
    assert totals[0]["calls"] == 2
    assert not reports.visible_calls(dave).exists()
    assert reports.build_report(dave, ONE_DAY).totals["calls"] == 0


def read_csv(response: Any) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_a_csv_holds_the_tables_numbers(carol: Any) -> None:
    make_call(at(10), established=at(10), terminated=at(10, 2))
    make_call(at(10, 5), terminated=at(10, 6))

    response = signed_in(carol).get("/reports/outcomes.csv" + QUERY)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="callbot-outcomes-2026-03-02-2026-03-02.csv"'
    )
    assert read_csv(response) == [
        ["Outcome", "Calls", "Share of calls"],
        ["Answered", "1", "50.0 %"],
        ["Abandoned", "1", "50.0 %"],
        ["Rejected", "0", "0.0 %"],
        ["Redirected", "0", "0.0 %"],
        ["Transferred", "0", "0.0 %"],
    ]


def test_a_meeting_subject_cannot_become_a_spreadsheet_formula(carol: Any) -> None:
    meeting = MeetingFactory(subject='=HYPERLINK("http://x")')
    make_call(at(10), meeting=meeting)

    response = signed_in(carol).get("/reports/busiest_meetings.csv" + QUERY)

    assert read_csv(response)[1][0] == '\'=HYPERLINK("http://x")'


def test_the_page_defaults_to_the_last_seven_days_and_lists_definitions(
    carol: Any,
) -> None:
    response = signed_in(carol).get("/reports/")

    assert response.status_code == 200
    assert response.context["period"].days == 7
    assert response.context["period"].last == timezone.localdate()
    assert b"How each figure is counted" in response.content
    assert b"No calls in this range." in response.content
    assert b'<details class="numbers">' in response.content


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("?start=2026-03-05&end=2026-03-01", b"The end date is before the start date."),
        ("?start=2026-01-01&end=2026-12-31", b"Choose at most 92 days."),
        ("?start=2026-03-05", b"Give both a start and an end date."),
        ("?start=yesterday&end=2026-03-01", b"Enter a valid date."),
        ("?preset=7d&tz=Mars/Olympus", b"Unknown time zone"),
    ],
)
def test_bad_ranges_get_a_clear_400(carol: Any, query: str, problem: bytes) -> None:
    page = signed_in(carol).get("/reports/" + query)
    export = signed_in(carol).get("/reports/outcomes.csv" + query)

    assert page.status_code == 400
    assert problem in page.content
    assert export.status_code == 400
    assert problem in export.content
    # Signing in is an audit entry; a refused report is no export.
    assert not AuditEntry.objects.filter(action__startswith="export.").exists()


def test_an_unknown_report_is_404(carol: Any) -> None:
    assert signed_in(carol).get("/reports/secrets.csv" + QUERY).status_code == 404
