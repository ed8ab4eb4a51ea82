"""Dashboard pages. Thin: check the role, read through ``snapshots``, call a service.

The live parts of each page come over the socket (``consumers.py``); these views
render the frame and what does not change while a page is open.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from callbot.calls import services, workerhealth
from callbot.calls.access import ActionRefusedError
from callbot.calls.meetings import save_meeting
from callbot.calls.models import Action, Call, Meeting
from callbot.calls.states import CallState
from dashboard.permissions import can_act, can_audit, can_manage, can_view, role_of

# Any response, streaming ones included (the audit exports).
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def allowed(check: Callable[[Any], bool]) -> Callable[[View], View]:
    """Sign-in required (redirect to the login page), then ``check`` or 403."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            if not check(request.user):
                raise PermissionDenied("Your role does not allow this page.")
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def render_page(request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    context.update(
        role=role_of(request.user),
        can_act=can_act(request.user),
        can_manage=can_manage(request.user),
        can_audit=can_audit(request.user),
    )
    return render(request, template, context)


@require_GET
@allowed(can_view)
def board(request: HttpRequest) -> HttpResponse:
    """Every live call, kept current over the socket."""
    return render_page(request, "dashboard/board.html", nav="board")


class MeetingForm(forms.Form):
    subject = forms.CharField(max_length=255, required=False)
    join_web_url = forms.URLField(
        label="Teams join link",
        max_length=4000,
        assume_scheme="https",
        widget=forms.URLInput(
            attrs={"placeholder": "https://teams.microsoft.com/l/meetup-join/..."}
        ),
    )
    starts_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    ends_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    auto_join = forms.BooleanField(
        required=False, label="Join by itself at the start time"
    )
    leave_at_end = forms.BooleanField(required=False, label="Leave at the end time")


def _save_meeting(
    request: HttpRequest, form: MeetingForm, meeting: Meeting | None
) -> Meeting | None:
    data = form.cleaned_data
    try:
        return save_meeting(
            actor=request.user,
            meeting=meeting,
            subject=data["subject"],
            join_web_url=data["join_web_url"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            auto_join=data["auto_join"],
            leave_at_end=data["leave_at_end"],
            client_ip=client_ip(request),
        )
    except ActionRefusedError as exc:
        form.add_error(None, exc.message)
        return None


@require_http_methods(["GET", "POST"])
@allowed(can_view)
def meetings(request: HttpRequest) -> HttpResponse:
    """Stored meetings (upcoming first) and, for those who may act, a schedule form."""
    form = MeetingForm(request.POST or None)
    if request.method == "POST":
        if not can_act(request.user):
            raise PermissionDenied("Your role may not schedule meetings.")
        if form.is_valid():
            meeting = _save_meeting(request, form, None)
            if meeting is not None:
                messages.success(request, f"Saved “{meeting}”.")
                return redirect("dashboard:meeting", meeting_id=meeting.pk)
    now = timezone.now()
    # Meetings the bot was invited to often have no stored subject; their calls do.
    calls = Call.objects.filter(meeting=OuterRef("pk")).order_by("-created_at")
    call_subject = calls.exclude(subject="").values("subject")[:1]
    call_caller = calls.exclude(source_display="").values("source_display")[:1]
    rows = Meeting.objects.annotate(
        live_calls=Count("calls", filter=~Q(calls__state=CallState.TERMINATED)),
        all_calls=Count("calls"),
        call_subject=Subquery(call_subject),
        call_caller=Subquery(call_caller),
    )
    upcoming = rows.filter(starts_at__gte=now).order_by("starts_at")
    others = rows.exclude(starts_at__gte=now).order_by("-starts_at", "-id")[:200]
    return render_page(
        request,
        "dashboard/meetings.html",
        nav="meetings",
        upcoming=upcoming,
        others=others,
        form=form,
    )


@require_http_methods(["GET", "POST"])
@allowed(can_view)
def meeting_detail(request: HttpRequest, meeting_id: int) -> HttpResponse:
    """A meeting's coordinates, schedule and calls; join it now or change its schedule."""
    meeting = get_object_or_404(Meeting, pk=meeting_id)
    initial = {
        "subject": meeting.subject,
        "join_web_url": meeting.join_web_url,
        "starts_at": _local(meeting.starts_at),
        "ends_at": _local(meeting.ends_at),
        "auto_join": getattr(meeting, "auto_join", False),
        "leave_at_end": getattr(meeting, "leave_at_end", False),
    }
    form = MeetingForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not can_act(request.user):
            raise PermissionDenied("Your role may not change meetings.")
        if form.is_valid() and _save_meeting(request, form, meeting) is not None:
            messages.success(request, "Schedule saved.")
            return redirect("dashboard:meeting", meeting_id=meeting.pk)
    calls = Call.objects.filter(meeting=meeting).order_by("-created_at")[:50]
    joins = Action.objects.filter(
        kind=Action.Kind.JOIN_MEETING, parameters__meeting_id=meeting.pk
    ).order_by("-created_at")[:10]
    title = meeting.subject or next(
        (c.subject for c in calls if c.subject), "Untitled meeting"
    )
    return render_page(
        request,
        "dashboard/meeting.html",
        nav="meetings",
        title=title,
        meeting=meeting,
        calls=calls,
        joins=joins,
        form=form,
    )


def _local(value: datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


@require_POST
@allowed(can_act)
def meeting_join(request: HttpRequest, meeting_id: int) -> HttpResponse:
    """Ask the bot to join this meeting now; the call appears on the board."""
    meeting = get_object_or_404(Meeting, pk=meeting_id)
    try:
        joined = services.request_join(
            actor=request.user,
            params={"meeting_id": meeting.pk},
            again=request.POST.get("again") == "1",
            client_ip=client_ip(request),
        )
    except ActionRefusedError as exc:
        messages.error(request, exc.message)
    else:
        if joined.action is None:
            messages.warning(
                request,
                "The bot is already in this meeting; press “Join again” to add "
                "another bot participant.",
            )
            return redirect(
                f"{reverse('dashboard:meeting', args=[meeting.pk])}?again=1"
            )
        messages.success(
            request, "Joining: this page follows the join as Teams answers."
        )
    return redirect("dashboard:meeting", meeting_id=meeting.pk)


def _secret_state(value: str) -> str:
    return "set" if value else "not set"


@require_GET
@allowed(can_manage)
def bot_settings(request: HttpRequest) -> HttpResponse:
    """What the bot is configured with, without secrets, and how it is doing."""
    layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).rsplit(".", 1)[-1]
    graph = [
        ("Mode", "Built-in emulator" if settings.USE_EMULATOR else "Microsoft Teams"),
        ("Tenant", settings.GRAPH_TENANT_ID),
        ("App (client) id", settings.GRAPH_CLIENT_ID),
        ("Client secret", _secret_state(settings.GRAPH_CLIENT_SECRET)),
        ("Graph base URL", settings.GRAPH_BASE_URL),
        ("Token authority", settings.GRAPH_AUTHORITY),
        ("Notification keys", settings.GRAPH_NOTIFICATION_OPENID_URL),
        ("Accepted issuers", ", ".join(settings.GRAPH_NOTIFICATION_ISSUERS)),
        ("Extra CA bundle", settings.GRAPH_CA_BUNDLE or "system store"),
        ("Graph timeout", f"{settings.GRAPH_TIMEOUT_SECONDS} s"),
        ("Retry budget", f"{settings.GRAPH_RETRY_BUDGET_SECONDS} s"),
    ]
    bot = [
        ("Display name", settings.BOT_DISPLAY_NAME),
        ("Public URL", settings.BOT_PUBLIC_URL),
        ("Calling webhook", f"{settings.BOT_PUBLIC_URL}/api/calling/callback"),
    ]
    runtime = [
        ("Database", connection.vendor),
        ("Channel layer", layer),
        (
            "Tasks",
            "in-process (eager)"
            if settings.CELERY_TASK_ALWAYS_EAGER
            else f"Celery worker (queue {settings.CELERY_TASK_DEFAULT_QUEUE})",
        ),
        ("Time zone", settings.TIME_ZONE),
        ("Debug", "on" if settings.DEBUG else "off"),
    ]
    counts = {
        "live_calls": Call.objects.exclude(state=CallState.TERMINATED).count(),
        "pending_actions": Action.objects.filter(status__in=["queued", "sent"]).count(),
        "failed_today": Action.objects.filter(
            status="failed",
            completed_at__gte=timezone.now() - timedelta(days=1),
        ).count(),
    }
    roles = Group.objects.filter(name__in=["Admin", "Supervisor", "Auditor"]).annotate(
        members=Count("user")
    )
    return render_page(
        request,
        "dashboard/settings.html",
        nav="settings",
        sections=[("Microsoft Graph", graph), ("Bot", bot), ("Runtime", runtime)],
        counts=counts,
        roles=roles,
        worker=_worker_words(workerhealth.check()),
    )


def _worker_words(health: workerhealth.WorkerHealth) -> dict[str, Any]:
    """The Settings page's worker line: fine, or what is wrong, in words."""
    if not health.ok:
        text = f"No worker is performing tasks: {health.problem}."
    elif health.mode == workerhealth.IN_PROCESS:
        text = "In-process: tasks run in the web process; nothing waits for a worker."
    else:
        text = (
            f"{health.last_worker} sent a heartbeat "
            f"{health.heartbeat_age_seconds:.0f} s ago."
        )
    if health.oldest_queued_seconds is not None:
        text += (
            f" Oldest action not yet taken by a worker: queued "
            f"{health.oldest_queued_seconds:.0f} s."
        )
    return {"ok": health.ok, "text": text, "threshold": health.threshold_seconds}
