"""The reports page (``/reports/``) and its CSV downloads. Thin: parse the range,
build the report through ``reports``, draw it through ``charts``, answer.

Who may read: whoever may view calls (auditors, supervisors, admins), over the calls
``reports.visible_calls`` gives them. Every CSV download is an audit entry.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from callbot.calls import audit
from dashboard import charts, reports
from dashboard.filterdays import DayField
from dashboard.permissions import can_view
from dashboard.views import allowed, client_ip, render_page

# Reports drawn as columns over time; the others are horizontal bars.
COLUMN_REPORTS = ("calls_over_time", "concurrency", "hour_of_day")
# Reports across the whole page width (the rest share a row in twos).
WIDE_REPORTS = ("calls_over_time", "busiest_meetings")
WIDE_CHART = 1280
# Bar colours by report (and by row label for outcomes); CSS classes "tone-*".
TONES = {"failed_actions": "bad", "busiest_meetings": "info"}
OUTCOME_TONES = {
    "Answered": "ok",
    "Abandoned": "warn",
    "Rejected": "bad",
    "Redirected": "info",
    "Transferred": "accent",
}
# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReportForm(forms.Form):
    preset = forms.ChoiceField(
        choices=[(key, label) for key, label in reports.PRESETS.items()],
        required=False,
    )
    start = DayField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = DayField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    tz = forms.CharField(required=False, max_length=64, label="Time zone")

    def clean_tz(self) -> ZoneInfo:
        name = self.cleaned_data["tz"].strip()
        if not name:
            return ZoneInfo(timezone.get_current_timezone_name())
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError(
                f"Unknown time zone {name!r}: write an IANA name such as Europe/Paris."
            ) from None

    def period(self) -> reports.Period:
        """The range asked for (default: the last 7 days); raises PeriodError.
        Call after ``is_valid()``."""
        data = self.cleaned_data
        tz: ZoneInfo = data["tz"]
        first: date | None = data.get("start")
        last: date | None = data.get("end")
        if first is not None or last is not None:
            if first is None or last is None:
                raise reports.PeriodError("Give both a start and an end date.")
            return reports.Period(first, last, tz)
        today = timezone.localtime(timezone.now(), tz).date()
        return reports.preset_period(data.get("preset") or "7d", today, tz)


@dataclass(frozen=True)
class Panel:
    name: str
    table: reports.Table
    csv_url: str
    columns: charts.ColumnChart | None = None
    bars: list[charts.Bar] | None = None

    @property
    def wide(self) -> bool:
        return self.name in WIDE_REPORTS


def _period_or_error(request: HttpRequest) -> tuple[ReportForm, reports.Period | None]:
    """The form and its period; None when the input is wrong (the form says why)."""
    form = ReportForm(request.GET)
    if not form.is_valid():
        return form, None
    try:
        return form, form.period()
    except reports.PeriodError as exc:
        form.add_error(None, str(exc))
        return form, None


def _query(period: reports.Period) -> str:
    return urlencode(
        {
            "start": period.first.isoformat(),
            "end": period.last.isoformat(),
            "tz": period.tz.key,
        }
    )


def _panel(table: reports.Table, period: reports.Period) -> Panel:
    url = reverse("dashboard:report-csv", args=[table.name]) + "?" + _query(period)
    if table.name in COLUMN_REPORTS:
        labels = [_short_label(str(label), period) for label in table.column(0)]
        width = WIDE_CHART if table.name in WIDE_REPORTS else charts.WIDTH
        chart = charts.column_chart(labels, table.column(1), width=width)
        return Panel(table.name, table, url, columns=chart)
    labels, values, notes = table.column(0), table.column(1), None
    if table.name == "failed_actions":
        labels = [_failure_label(row) for row in table.rows]
        values, notes = table.column(3), table.column(4)
    elif table.name == "busiest_meetings":
        values = table.column(2)
        notes = [
            f"{joins} participant joins, {minutes:g} connected minutes"
            for joins, minutes in zip(table.column(3), table.column(4), strict=True)
        ]
    elif len(table.columns) > 2:
        notes = table.column(2)
    tone = TONES.get(table.name, "accent")
    tones = [
        OUTCOME_TONES.get(str(label), tone) if table.name == "outcomes" else tone
        for label in table.column(0)
    ]
    chart_bars = charts.bars(
        [str(label) for label in labels], values, notes=notes, tones=tones
    )
    return Panel(table.name, table, url, bars=chart_bars)


def _short_label(label: str, period: reports.Period) -> str:
    """Axis labels: "14:00" within a day; over two days "11-30" at midnight and
    "14h" otherwise; "11-30" by the day."""
    if len(label) == 5:  # hour of the day, "14:00"
        return label
    if period.hourly:
        if period.days == 1:
            return label[11:16]
        return label[5:10] if label[11:13] == "00" else f"{label[11:13]}h"
    return label[5:]


def _failure_label(row: list[Any]) -> str:
    code, subcode, error = row[0], row[1], row[2]
    if code == "other":
        return str(error)
    text = "no code" if code is None else str(code)
    if subcode is not None:
        text += f"/{subcode}"
    return f"{text} · {error}" if error else text


@require_GET
@allowed(can_view)
def reports_page(request: HttpRequest) -> HttpResponse:
    """Charts over a date range, each with its numbers and a CSV download."""
    form, period = _period_or_error(request)
    if period is None:
        response = render_page(
            request,
            "dashboard/reports.html",
            nav="reports",
            form=form,
            presets=reports.PRESETS,
        )
        response.status_code = 400
        return response
    report = reports.build_report(request.user, period)
    panels = {name: _panel(table, period) for name, table in report.tables.items()}
    today = timezone.localtime(timezone.now(), period.tz).date()
    preset_links = [
        (
            label,
            "?" + urlencode({"preset": key, "tz": period.tz.key}),
            reports.preset_period(key, today, period.tz) == period,
        )
        for key, label in reports.PRESETS.items()
    ]
    return render_page(
        request,
        "dashboard/reports.html",
        nav="reports",
        form=form,
        report=report,
        period=period,
        panels=panels,
        preset_links=preset_links,
        definitions=reports.DEFINITIONS,
    )


@require_GET
@allowed(can_view)
def report_csv(request: HttpRequest, name: str) -> HttpResponse:
    """One report as CSV (UTF-8 with a byte-order mark, for spreadsheet programs).
    Audited as ``export.report``."""
    if name not in reports.REPORT_NAMES:
        raise Http404(f"No report {name!r}")
    form, period = _period_or_error(request)
    if period is None:
        problems = "; ".join(
            str(message) for messages in form.errors.values() for message in messages
        )
        return HttpResponse(problems, status=400, content_type="text/plain")
    table = reports.build_report(request.user, period, only=name).tables[name]
    audit.record(
        request.user,
        "export.report",
        name,
        outcome="ok",
        detail={
            "report": name,
            "start": period.first.isoformat(),
            "end": period.last.isoformat(),
            "tz": period.tz.key,
            "rows": len(table.rows),
        },
        client_ip=client_ip(request),
    )
    filename = (
        f"callbot-{name}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_cell(value) for value in row])
    return response


def _cell(value: Any) -> Any:
    """A CSV cell: text that a spreadsheet would run as a formula is quoted with '."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
