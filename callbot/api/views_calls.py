"""Calls: the history's list and filters, one call, its roster and its timeline.

Thin: the history's form reads the filters, ``history_query`` pages and reads,
``timeline_reads`` gives the roster and timeline; anyone who may view calls sees
every call, as on the call page (``snapshots.access_call``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.utils import timezone

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from callbot.api.errors import ApiError
from callbot.api.serializers import (
    CallListFilterSerializer,
    CallRowSerializer,
    CallSerializer,
    PersonSerializer,
    TimelinePageSerializer,
)
from callbot.calls.models import Call
from dashboard import snapshots, timeline_reads
from dashboard.history import HistoryForm, form_problems, viewer_zone
from dashboard.history_query import (
    HistoryFilterError,
    history_page,
    history_rows,
    matching_calls,
)
from dashboard.timeline import CursorError

CALL_PAGE = inline_serializer(
    "CallPage",
    {
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": CallRowSerializer(many=True),
    },
)
PAGE_SIZE_MAX = 200


def access_call(request: Request, call_id: int) -> Call:
    """The call, for a user who may see it; else 404."""
    try:
        return snapshots.access_call(request.user, call_id)
    except snapshots.CallAccessError:
        raise ApiError("not_found", f"There is no call {call_id}.", 404) from None


def _page_size(request: Request, default: int) -> int:
    raw = request.query_params.get("page_size", "")
    if raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise ApiError("invalid", f"page_size must be 1 to {PAGE_SIZE_MAX}.")
    return size


def _link(request: Request, cursor: str | None) -> str | None:
    if not cursor:
        return None
    params = request.query_params.copy()
    params["cursor"] = cursor
    query = urlencode([(k, v) for k, v in params.items() if v != ""])
    return request.build_absolute_uri(f"{request.path}?{query}")


class CallList(GenericAPIView[Call]):
    """Every call ever handled, filtered like the history page, newest first."""

    serializer_class = CallRowSerializer
    pagination_class = None

    @extend_schema(
        operation_id="calls_list",
        parameters=[
            CallListFilterSerializer,
            OpenApiParameter("page_size", int, description="1 to 200 (50)."),
        ],
        responses=CALL_PAGE,
    )
    def get(self, request: Request) -> Response:
        # The cursor says which way it pages: ``a.<key>`` after, ``b.<key>`` before.
        form = HistoryForm(request.query_params)
        if not form.is_valid():
            raise ApiError("invalid", form_problems(form))
        tz = viewer_zone(form)
        try:
            filters = form.filters(tz, timezone.now().astimezone(tz).date())
            cursor = request.query_params.get("cursor", "")
            way, _, key = cursor.partition(":")
            if cursor and way not in ("after", "before"):
                raise HistoryFilterError(f"Not a page cursor: {cursor[:40]!r}.")
            page = history_page(
                matching_calls(filters),
                form.chosen_sort(),
                after=key if way == "after" else "",
                before=key if way == "before" else "",
                size=_page_size(request, 50),
            )
        except HistoryFilterError as exc:
            raise ApiError("invalid", str(exc)) from None
        return Response(
            {
                "next": _link(request, page.after and f"after:{page.after}"),
                "previous": _link(request, page.before and f"before:{page.before}"),
                "results": CallRowSerializer(history_rows(page.calls), many=True).data,
            }
        )


class CallDetail(GenericAPIView[Call]):
    """One call."""

    serializer_class = CallSerializer

    def get(self, request: Request, call_id: int) -> Response:
        return Response(CallSerializer(access_call(request, call_id)).data)


class CallRoster(GenericAPIView[Call]):
    """Everyone ever on the call, in order of joining, with what happened to them."""

    serializer_class = PersonSerializer
    pagination_class = None

    @extend_schema(responses=PersonSerializer(many=True))
    def get(self, request: Request, call_id: int) -> Response:
        call = access_call(request, call_id)
        people = timeline_reads.roster_history(call)
        return Response(PersonSerializer(people, many=True).data)


def _entry(entry: Any) -> dict[str, Any]:
    row = entry.as_json()
    return {
        **row,
        "at": entry.at,
        "digits": entry.digits,
        "recording_id": entry.recording_id,
        "raw": entry.raw,
    }


class CallTimeline(GenericAPIView[Call]):
    """The call's timeline a page at a time, oldest first: notifications, actions,
    roster changes, audit entries, recordings and IVR steps."""

    serializer_class = TimelinePageSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("after", str, description="Entries after this cursor."),
            OpenApiParameter("before", str, description="Entries before it."),
            OpenApiParameter("latest", OpenApiTypes.BOOL, description="Last page."),
            OpenApiParameter("page_size", int, description="1 to 500 (100)."),
        ]
    )
    def get(self, request: Request, call_id: int) -> Response:
        call = access_call(request, call_id)
        query = request.query_params
        try:
            size = int(query.get("page_size") or timeline_reads.PAGE_SIZE)
            page = timeline_reads.timeline_page(
                call,
                after=query.get("after", ""),
                before=query.get("before", ""),
                latest=query.get("latest") in ("1", "true"),
                size=size,
            )
        except (CursorError, ValueError) as exc:
            raise ApiError("invalid", str(exc)) from None
        return Response(
            TimelinePageSerializer(
                {
                    "entries": [_entry(e) for e in page.entries],
                    "older": page.older,
                    "newer": page.newer,
                }
            ).data
        )
