"""The call history page and its exports, for auditors, supervisors and admins.

Thin: the filter form reads the URL (so a filtered history is a link to share,
and works without JavaScript), ``history_query`` does the reading, and an export
is written to the audit trail when its last row has gone out. Anyone who may
view calls sees every call here, as on the call page (``snapshots.access_call``).
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Any
from urllib.parse import unquote, urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from callbot.calls import audit
from callbot.calls.models import Action
from callbot.calls.states import CallDirection, CallKind, CallOutcome
from dashboard import history_export
from dashboard.filterdays import DayField
from dashboard.history_query import (
    COUNT_LIMIT,
    HistoryFilterError,
    HistoryFilters,
    Sort,
    count_matches,
    history_page,
    history_rows,
    matching_calls,
)
from dashboard.permissions import can_view
from dashboard.views import allowed, client_ip, render_page

TZ_COOKIE = "tz"
PERIODS = [("", "Any time"), ("today", "Today"), ("yesterday", "Yesterday"), ("7d", "Last 7 days")]  # fmt: skip
CURSOR_PARAMS = ("after", "before")


@cache
def _zone_names() -> frozenset[str]:
    # Walking the time zone database takes 10-40 ms; it does not change while the
    # process runs, so every request after the first reuses it.
    return frozenset(zoneinfo.available_timezones())


@cache
def _zone_options() -> SafeString:
    """The time zone picker's 600 ``<option>``s, rendered once per process: as a
    template loop they took a sixth of the page's rendering."""
    return format_html_join(
        "", '<option value="{}">', ((n,) for n in sorted(_zone_names()))
    )


def zone(name: str) -> tzinfo | None:
    """The IANA time zone of this name, or None if there is none."""
    if name not in _zone_names():
        return None
    return zoneinfo.ZoneInfo(name)


def period_range(name: str, today: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of ``today``, ``yesterday`` or ``7d`` (today and the six days
    before), midnight to midnight in ``tz``."""
    first, last = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "7d": (today - timedelta(days=6), today),
    }[name]
    return _midnight(first, tz), _midnight(last + timedelta(days=1), tz)


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def actors() -> QuerySet[Any]:
    """Users who may act on calls: the choices of "who acted"."""
    return (
        get_user_model()
        .objects.filter(
            Q(is_superuser=True)
            | Q(groups__permissions__codename="request_action")
            | Q(user_permissions__codename="request_action")
        )
        .distinct()
        .order_by("username")
    )


def _choices(choices: list[tuple[str, str]], empty: str) -> list[tuple[str, str]]:
    return [("", empty), *choices]


class UserChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A user by username (``?actor=dana``, as the audit trail's filter takes it),
    or by id (links and API clients made before usernames were accepted)."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except ValidationError:
            if not str(value).isdigit():
                raise
            try:
                return self.queryset.get(pk=int(value))  # type: ignore[union-attr]
            except (ObjectDoesNotExist, OverflowError):
                raise ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice"
                ) from None


class HistoryForm(forms.Form):
    """The history's filters as they appear in the URL; ``filters()`` turns a valid
    form into ``HistoryFilters`` in the viewer's time zone."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "Name, AAD object id, phone, subject, call id",
            }
        ),
    )
    period = forms.ChoiceField(required=False, choices=PERIODS)
    date_from = DayField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = DayField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    kind = forms.ChoiceField(required=False, choices=_choices(CallKind.choices, "Any kind"))  # fmt: skip
    direction = forms.ChoiceField(
        required=False, choices=_choices(CallDirection.choices, "Any direction")
    )
    outcome = forms.ChoiceField(
        required=False, choices=_choices(CallOutcome.choices, "Any outcome")
    )
    min_duration = forms.IntegerField(
        required=False, min_value=0, label="Duration from (s)"
    )
    max_duration = forms.IntegerField(required=False, min_value=0, label="to (s)")
    actor: forms.ModelChoiceField[Any] = UserChoiceField(
        queryset=None,
        to_field_name="username",
        required=False,
        label="Who acted",
        empty_label="Anyone or no one",
    )
    action = forms.ChoiceField(
        required=False, choices=_choices(Action.Kind.choices, "Any action")
    )
    recording = forms.ChoiceField(
        required=False,
        choices=[("", "Recording or not"), ("yes", "Has a recording"), ("no", "No recording")],
    )  # fmt: skip
    ivr = forms.CharField(
        required=False,
        max_length=100,
        label="IVR path",
        widget=forms.TextInput(attrs={"placeholder": "sales or menu:1"}),
    )
    sort = forms.ChoiceField(
        required=False,
        choices=[
            (Sort.NEWEST.value, "Newest first"),
            (Sort.OLDEST.value, "Oldest first"),
            (Sort.LONGEST.value, "Longest first"),
            (Sort.SHORTEST.value, "Shortest first"),
        ],
    )
    tz = forms.CharField(
        required=False,
        max_length=64,
        label="Time zone",
        widget=forms.TextInput(attrs={"list": "time-zones", "size": 16}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.fields["actor"]
        assert isinstance(actor, forms.ModelChoiceField)  # noqa: S101 (narrowing)
        actor.queryset = actors()

    def clean_tz(self) -> str:
        name: str = self.cleaned_data["tz"].strip()
        if name and zone(name) is None:
            raise forms.ValidationError(
                f"No time zone {name!r}: write e.g. Europe/Berlin."
            )
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("period") and (data.get("date_from") or data.get("date_to")):
            raise forms.ValidationError("Choose a period or dates, not both.")
        return data

    def chosen_sort(self) -> Sort:
        return Sort(self.cleaned_data.get("sort") or Sort.NEWEST)

    def filters(self, tz: tzinfo, today: date) -> HistoryFilters:
        """The filters of a valid form; raises HistoryFilterError if they
        contradict each other (the range ends before it starts, ...)."""
        data = self.cleaned_data
        since = until = None
        if data["period"]:
            since, until = period_range(data["period"], today, tz)
        if data["date_from"]:
            since = _midnight(data["date_from"], tz)
        if data["date_to"]:
            until = _midnight(data["date_to"] + timedelta(days=1), tz)
        recording = {"yes": True, "no": False}.get(data["recording"])
        actor: AbstractBaseUser | None = data["actor"]
        return HistoryFilters(
            q=data["q"],
            since=since,
            until=until,
            kind=data["kind"],
            direction=data["direction"],
            outcome=data["outcome"],
            min_duration=data["min_duration"],
            max_duration=data["max_duration"],
            actor_id=actor.pk if actor is not None else None,
            action_kind=data["action"],
            recording=recording,
            ivr=data["ivr"].strip(),
        )


def viewer_zone(form: HistoryForm, cookie: str = "") -> tzinfo:
    """The form's time zone, else the browser's (``cookie``, set by history.js),
    else the server's ``TIME_ZONE``."""
    chosen = form.cleaned_data.get("tz") if form.is_valid() else ""
    for name in (chosen, cookie):
        found = zone(name or "")
        if found is not None:
            return found
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _query(request: HttpRequest, **changes: str) -> str:
    params = request.GET.copy()
    for name in CURSOR_PARAMS:
        params.pop(name, None)
    for name, value in changes.items():
        params[name] = value
    return urlencode([(k, v) for k, v in params.items() if v != ""])


def _read(request: HttpRequest) -> tuple[HistoryForm, tzinfo, HistoryFilters | None]:
    form = HistoryForm(request.GET)
    # history.js writes the zone with encodeURIComponent (Europe%2FBerlin).
    tz = viewer_zone(form, unquote(request.COOKIES.get(TZ_COOKIE, "")))
    if not form.is_valid():
        return form, tz, None
    try:
        return form, tz, form.filters(tz, timezone.now().astimezone(tz).date())
    except HistoryFilterError as exc:
        form.add_error(None, str(exc))
        return form, tz, None


def form_problems(form: HistoryForm) -> str:
    """The form's errors on one line: ``min_duration: Ensure ...; ...``."""
    return "; ".join(
        " ".join(str(e) for e in errors)
        if name == "__all__"
        else f"{name}: {' '.join(str(e) for e in errors)}"
        for name, errors in form.errors.items()
    )


def _refused(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    """The page with the form's errors and no results: 400, as bad input is."""
    response = render_page(request, "dashboard/history.html", **context)
    response.status_code = 400
    return response


@require_GET
@allowed(can_view)
def history(request: HttpRequest) -> HttpResponse:
    """Every call ever handled, filtered by the URL, a keyset page at a time."""
    form, tz, filters = _read(request)
    context: dict[str, Any] = {
        "nav": "history",
        "form": form,
        "tz": tz,
        "tz_name": str(tz),
        "count_limit": COUNT_LIMIT,
        "zone_options": _zone_options(),
    }
    if filters is None:
        return _refused(request, context)
    calls = matching_calls(filters)
    sort = form.chosen_sort()
    try:
        page = history_page(
            calls,
            sort,
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
        )
    except HistoryFilterError as exc:
        form.add_error(None, str(exc))
        return _refused(request, context)
    count, more = count_matches(calls, COUNT_LIMIT)
    context.update(
        rows=history_rows(page.calls),
        count=count,
        more=more,
        next_query=_query(request, after=page.after) if page.after else "",
        prev_query=_query(request, before=page.before) if page.before else "",
        export_query=_query(request),
    )
    return render_page(request, "dashboard/history.html", **context)


@require_GET
@allowed(can_view)
def history_export_view(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The filtered history as a streamed CSV or JSON Lines file; audited as
    ``export.history`` with the filters and the rows sent once the file ends."""
    form, tz, filters = _read(request)
    if filters is None:
        return HttpResponse(
            f"Bad filters: {form_problems(form)}\n",
            status=400,
            content_type="text/plain",
        )
    user, ip, sort = request.user, client_ip(request), form.chosen_sort()

    def done(rows: int, complete: bool) -> None:
        audit.record(
            user,
            "export.history",
            fmt,
            outcome="ok" if complete else "incomplete",
            detail={
                "filters": filters.as_json(),
                "sort": sort.value,
                "format": fmt,
                "rows": rows,
            },
            client_ip=ip,
        )

    stamp = timezone.now().astimezone(tz).strftime("%Y%m%d-%H%M%S")
    # Served by Daphne an async stream; under WSGI (the test client) a plain one.
    stream = (
        history_export.alines
        if isinstance(request, ASGIRequest)
        else history_export.blines
    )
    response = StreamingHttpResponse(
        stream(matching_calls(filters), sort, fmt, tz, done),
        content_type=history_export.FORMATS[fmt],
    )
    response["Content-Disposition"] = (
        f'attachment; filename="call-history-{stamp}.{history_export.EXTENSIONS[fmt]}"'
    )
    response["Cache-Control"] = "no-store"
    return response
