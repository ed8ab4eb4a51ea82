"""Dashboard URLs (included at the site root)."""

from __future__ import annotations

from django.urls import path, re_path

from dashboard import (
    audit_views,
    call_history,
    history,
    permissions_panel,
    place,
    report_views,
    views,
)

app_name = "dashboard"

urlpatterns = [
    path("", views.board, name="board"),
    path("calls/<int:call_id>/", call_history.call_page, name="call"),
    path(
        "calls/<int:call_id>/export.<str:fmt>",
        call_history.export_call,
        name="call-export",
    ),
    path(
        "recordings/<int:recording_id>/audio",
        call_history.recording_audio,
        name="recording",
    ),
    path("calls/new/", place.place_call, name="place-call"),
    path("calls/<int:call_id>/others", place.other_calls, name="other-calls"),
    path("meetings/join/", place.join_meeting, name="join-meeting"),
    path("meetings/", views.meetings, name="meetings"),
    path("meetings/<int:meeting_id>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:meeting_id>/join", views.meeting_join, name="meeting-join"),
    path("settings/", views.bot_settings, name="settings"),
    path("audit/", audit_views.audit_trail, name="audit"),
    path(
        "audit/export.csv",
        audit_views.audit_export,
        {"fmt": "csv"},
        name="audit-export-csv",
    ),
    path(
        "audit/export.jsonl",
        audit_views.audit_export,
        {"fmt": "jsonl"},
        name="audit-export-jsonl",
    ),
    path("history/", history.history, name="history"),
    re_path(
        r"^history/export\.(?P<fmt>csv|jsonl)$",
        history.history_export_view,
        name="history-export",
    ),
    path("reports/", report_views.reports_page, name="reports"),
    path("reports/<slug:name>.csv", report_views.report_csv, name="report-csv"),
    path(
        "settings/permissions/",
        permissions_panel.permissions_panel,
        name="permissions",
    ),
]
