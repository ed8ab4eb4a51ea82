"""Recordings, the audit trail, alerts and who is asking.

Downloading a recording and exporting the trail are audit entries, as on the
dashboard (``recording.download``, ``export.audit``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from callbot.api.errors import ApiError
from callbot.api.models import ApiToken
from callbot.api.pagination import AuditCursorPagination
from callbot.api.permissions import CanAudit, CanListen
from callbot.api.serializers import (
    AlertSerializer,
    AuditEntrySerializer,
    AuditFilterSerializer,
    MeSerializer,
    RecordingSerializer,
)
from callbot.api.views_actions import client_ip
from callbot.calls import audit, auditexport
from callbot.calls.models import Alert, AuditEntry, Recording
from dashboard import audit_views
from dashboard.call_history import AUDIO_TYPE, recording_filename
from dashboard.history import form_problems
from dashboard.permissions import can_act, can_audit, can_listen, can_view, role_of


class _FileRenderer(BaseRenderer):
    """Names a file type for content negotiation; the view writes the bytes."""

    def render(self, data: Any, *args: Any, **kwargs: Any) -> bytes:
        return data if isinstance(data, bytes) else b""


class WavRenderer(_FileRenderer):
    media_type = AUDIO_TYPE
    format = "wav"


class CsvRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"


class JsonLinesRenderer(_FileRenderer):
    media_type = "application/x-ndjson"
    format = "jsonl"


class RecordingList(ListAPIView[Recording]):
    """Recordings' metadata, newest first (the audio is ``/audio``, for those who
    may listen)."""

    serializer_class = RecordingSerializer

    def get_queryset(self) -> QuerySet[Recording]:
        rows = Recording.objects.all()
        call = self.request.query_params.get("call", "")
        if call.isdecimal():
            rows = rows.filter(call_id=int(call[:18]))
        return rows

    @extend_schema(parameters=[OpenApiParameter("call", int)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class RecordingDetail(RetrieveAPIView[Recording]):
    """One recording's metadata."""

    serializer_class = RecordingSerializer
    queryset = Recording.objects.all()
    lookup_url_kwarg = "recording_id"


class RecordingAudio(GenericAPIView[Recording]):
    """The recording's audio as a WAV attachment; audited (``recording.download``)."""

    permission_classes = [CanListen]
    renderer_classes = [JSONRenderer, WavRenderer]
    pagination_class = None

    @extend_schema(
        responses={
            (200, AUDIO_TYPE): OpenApiResponse(OpenApiTypes.BINARY),
        }
    )
    def get(self, request: Request, recording_id: int) -> FileResponse:
        recording = get_object_or_404(
            Recording.objects.select_related("call"), pk=recording_id
        )
        try:
            audio = recording.audio.open("rb")
        except FileNotFoundError:
            raise ApiError(
                "not_found", "The recording's audio is missing.", 404
            ) from None
        audit.record(
            request.user,
            "recording.download",
            f"recording {recording.pk}",
            recording.call,
            outcome="ok",
            detail={"recording_id": recording.pk, "via": "api"},
            client_ip=client_ip(request),
        )
        response = FileResponse(
            audio, as_attachment=True, filename=recording_filename(recording)
        )
        response["Content-Type"] = AUDIO_TYPE
        response["Cache-Control"] = "private, max-age=0"
        return response


def _audit_form(request: Request) -> audit_views.AuditFilterForm:
    form = audit_views.AuditFilterForm(request.query_params or None)
    if form.is_bound and not form.is_valid():
        raise ApiError("invalid", form_problems(form))  # type: ignore[arg-type]
    return form


def _audit_filter(form: audit_views.AuditFilterForm) -> auditexport.AuditFilter:
    return form.audit_filter() if form.is_bound else auditexport.AuditFilter()


class AuditList(ListAPIView[AuditEntry]):
    """The whole audit trail, newest first, filtered as on the audit page."""

    permission_classes = [CanAudit]
    serializer_class = AuditEntrySerializer
    pagination_class = AuditCursorPagination

    def get_queryset(self) -> QuerySet[AuditEntry]:
        # Cursor pagination adds its own order; ``entries()`` gives the filter.
        entries: QuerySet[AuditEntry] = _audit_filter(
            _audit_form(self.request)
        ).entries()
        return entries.select_related("call")

    @extend_schema(parameters=[AuditFilterSerializer])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class AuditExport(GenericAPIView[AuditEntry]):
    """The (filtered) trail as CSV or JSON Lines, streamed; the export is audited
    (``export.audit``)."""

    permission_classes = [CanAudit]
    renderer_classes = [JSONRenderer, CsvRenderer, JsonLinesRenderer]
    pagination_class = None
    fmt = "csv"

    @extend_schema(
        parameters=[AuditFilterSerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        form = _audit_form(request)
        chosen = _audit_filter(form)
        described = {
            name: str(value)
            for name, value in (form.cleaned_data if form.is_bound else {}).items()
            if value not in (None, "")
        }
        with transaction.atomic():
            audit.record(
                request.user,
                "export.audit",
                self.fmt,
                outcome="exported",
                detail={"filters": described, "via": "api"},
                client_ip=client_ip(request),
            )
        queryset = chosen.entries() if chosen.active else None
        blocks: Iterator[str] = (
            auditexport.csv_lines(queryset)
            if self.fmt == "csv"
            else auditexport.jsonl_lines(queryset, filtered=chosen.active)
        )
        content_type, extension = audit_views.EXPORTS[self.fmt]
        raw = request._request
        response = StreamingHttpResponse(
            audit_views._async_blocks(blocks)
            if isinstance(raw, ASGIRequest)
            else blocks,
            content_type=content_type,
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = (
            f'attachment; filename="callbot-audit-{stamp}.{extension}"'
        )
        response["Cache-Control"] = "no-store"
        return response


class AlertList(ListAPIView[Alert]):
    """Alerts, newest first; ``?open=true`` for those still open."""

    serializer_class = AlertSerializer

    def get_queryset(self) -> QuerySet[Alert]:
        rows = Alert.objects.all()
        wanted = self.request.query_params.get("open", "")
        if wanted in ("true", "1"):
            rows = rows.filter(cleared_at__isnull=True)
        elif wanted in ("false", "0"):
            rows = rows.filter(cleared_at__isnull=False)
        return rows

    @extend_schema(parameters=[OpenApiParameter("open", OpenApiTypes.BOOL)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class Me(GenericAPIView[Any]):
    """Who the request acts as, and what that role may do."""

    # Any signed-in user: one without a role learns so here.
    permission_classes = [IsAuthenticated]
    serializer_class = MeSerializer
    pagination_class = None

    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            MeSerializer(
                {
                    "username": user.get_username(),
                    "role": role_of(user),
                    "can_view": can_view(user),
                    "can_act": can_act(user),
                    "can_listen": can_listen(user),
                    "can_audit": can_audit(user),
                    "auth": "token"
                    if isinstance(request.auth, ApiToken)
                    else "session",
                }
            ).data
        )
