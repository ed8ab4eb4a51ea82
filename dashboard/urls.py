"""Dashboard URLs (included at the site root)."""

from __future__ import annotations

from django.urls import path

from dashboard import place, views

app_name = "dashboard"

urlpatterns = [
    path("", views.board, name="board"),
    path("calls/<int:call_id>/", views.call_detail, name="call"),
    path("calls/new/", place.place_call, name="place-call"),
    path("calls/<int:call_id>/others", place.other_calls, name="other-calls"),
    path("meetings/join/", place.join_meeting, name="join-meeting"),
    path("meetings/", views.meetings, name="meetings"),
    path("meetings/<int:meeting_id>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:meeting_id>/join", views.meeting_join, name="meeting-join"),
    path("settings/", views.bot_settings, name="settings"),
]
