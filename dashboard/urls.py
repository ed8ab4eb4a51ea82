"""Dashboard URLs (included at the site root)."""

from __future__ import annotations

from django.urls import path

from dashboard import call_history, views

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
    path("meetings/", views.meetings, name="meetings"),
    path("meetings/<int:meeting_id>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:meeting_id>/join", views.meeting_join, name="meeting-join"),
    path("settings/", views.bot_settings, name="settings"),
]
