"""Dashboard URLs (included at the site root)."""

from __future__ import annotations

from django.urls import path

from dashboard import report_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.board, name="board"),
    path("calls/<int:call_id>/", views.call_detail, name="call"),
    path("meetings/", views.meetings, name="meetings"),
    path("meetings/<int:meeting_id>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:meeting_id>/join", views.meeting_join, name="meeting-join"),
    path("settings/", views.bot_settings, name="settings"),
    path("reports/", report_views.reports_page, name="reports"),
    path("reports/<slug:name>.csv", report_views.report_csv, name="report-csv"),
]
