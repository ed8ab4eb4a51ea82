"""API URLs: ``/api/v1/...``, the OpenAPI schema and its docs page."""

from __future__ import annotations

from django.urls import include, path, register_converter

from drf_spectacular.views import SpectacularAPIView

from callbot.api import docs, views_actions, views_calls, views_records


class IdConverter:
    """A row id: 1 to 18 digits, so no id overflows a database integer."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

v1 = [
    path("calls/", views_calls.CallList.as_view(), name="call-list"),
    path("calls/<id:call_id>/", views_calls.CallDetail.as_view(), name="call-detail"),
    path(
        "calls/<id:call_id>/roster/",
        views_calls.CallRoster.as_view(),
        name="call-roster",
    ),
    path(
        "calls/<id:call_id>/timeline/",
        views_calls.CallTimeline.as_view(),
        name="call-timeline",
    ),
    path("actions/", views_actions.ActionList.as_view(), name="action-list"),
    path(
        "actions/<id:action_id>/",
        views_actions.ActionDetail.as_view(),
        name="action-detail",
    ),
    path("meetings/", views_actions.MeetingList.as_view(), name="meeting-list"),
    path(
        "meetings/join/", views_actions.JoinByLink.as_view(), name="meeting-join-link"
    ),
    path(
        "meetings/<id:meeting_id>/",
        views_actions.MeetingDetail.as_view(),
        name="meeting-detail",
    ),
    path(
        "meetings/<id:meeting_id>/join/",
        views_actions.MeetingJoin.as_view(),
        name="meeting-join",
    ),
    path("recordings/", views_records.RecordingList.as_view(), name="recording-list"),
    path(
        "recordings/<id:recording_id>/",
        views_records.RecordingDetail.as_view(),
        name="recording-detail",
    ),
    path(
        "recordings/<id:recording_id>/audio/",
        views_records.RecordingAudio.as_view(),
        name="recording-audio",
    ),
    path("audit/", views_records.AuditList.as_view(), name="audit-list"),
    path(
        "audit/export.csv",
        views_records.AuditExport.as_view(fmt="csv"),
        name="audit-export-csv",
    ),
    path(
        "audit/export.jsonl",
        views_records.AuditExport.as_view(fmt="jsonl"),
        name="audit-export-jsonl",
    ),
    path("alerts/", views_records.AlertList.as_view(), name="alert-list"),
    path("me/", views_records.Me.as_view(), name="me"),
]

app_name = "api"

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", docs.DocsPage.as_view(), name="docs"),
]
