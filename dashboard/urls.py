"""Dashboard URLs (included at the site root)."""

from __future__ import annotations

from django.urls import path

from dashboard import permissions_panel, views

app_name = "dashboard"

urlpatterns = [
    path("", views.board, name="board"),
    path("calls/<int:call_id>/", views.call_detail, name="call"),
    path("meetings/", views.meetings, name="meetings"),
    path("meetings/<int:meeting_id>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:meeting_id>/join", views.meeting_join, name="meeting-join"),
    path("settings/", views.bot_settings, name="settings"),
    path(
        "settings/permissions/",
        permissions_panel.permissions_panel,
        name="permissions",
    ),
]
