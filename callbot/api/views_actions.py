"""Actions and meetings: ask for anything the dashboard can, read how it went.

Requests go through the services the live socket and the pages use
(``dashboard.incoming.request``, ``services.request_join``,
``meetings.save_meeting``): the same checks, refusals, audit entries and live
updates. The per-user action limit the socket applies holds here too.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from callbot.api.errors import ApiError
from callbot.api.permissions import CanAct, ReadCanViewWriteCanAct
from callbot.api.serializers import (
    ActionRequestSerializer,
    ActionSerializer,
    JoinAgainSerializer,
    JoinResultSerializer,
    JoinSerializer,
    MeetingSerializer,
    MeetingWriteSerializer,
)
from callbot.calls import audit, services
from callbot.calls.access import ActionRefusedError
from callbot.calls.meetings import save_meeting
from callbot.calls.models import Action, Meeting
from callbot.calls.states import ActionStatus
from dashboard import incoming, ratelimit


def client_ip(request: Request) -> str | None:
    return request.META.get("REMOTE_ADDR")


class RateLimitedError(ActionRefusedError):
    def __init__(self, wait: float) -> None:
        super().__init__(
            "rate_limited", "Too many actions in a short time; wait before the next."
        )
        self.retry_after = wait


class ActionList(ListAPIView[Action]):
    """Actions, newest first; POST asks for one (202: queued, performed by the
    worker; poll the action or watch the call for its outcome)."""

    permission_classes = [ReadCanViewWriteCanAct]
    serializer_class = ActionSerializer

    def get_queryset(self) -> QuerySet[Action]:
        rows = Action.objects.select_related("requested_by")
        query = self.request.query_params
        if query.get("call", "").isdecimal():
            rows = rows.filter(call_id=int(query["call"][:18]))
        for name, known in (("status", ActionStatus), ("kind", Action.Kind)):
            value = query.get(name, "")
            if value and value not in known.values:
                raise ApiError("invalid", f"{name}: no such value {value[:40]!r}.")
            if value:
                rows = rows.filter(**{name: value})
        return rows

    @extend_schema(
        parameters=[
            OpenApiParameter("call", int, description="Only this call's actions."),
            OpenApiParameter("status", str, enum=ActionStatus.values),
            OpenApiParameter("kind", str, enum=Action.Kind.values),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ActionRequestSerializer,
        responses={202: ActionSerializer(many=True)},
    )
    def post(self, request: Request) -> Response:
        form = ActionRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        kind, call = data["kind"], data.get("call")
        participant, ip = data.get("participant", ""), client_ip(request)
        wait = ratelimit.take_user_action(request.user.pk or 0)
        if wait:
            refused = RateLimitedError(wait)
            audit.record_refusal(request.user, kind, call, participant, refused, ip)
            raise refused
        actions = incoming.request(
            kind,
            actor=request.user,
            call=call,
            participant_id=participant,
            params=data.get("params") or {},
            client_ip=ip,
        )
        return Response(
            ActionSerializer(actions, many=True).data, status=status.HTTP_202_ACCEPTED
        )


class ActionDetail(RetrieveAPIView[Action]):
    """One action and its status (``queued``, ``sent``, ``completed``, ``failed``)."""

    serializer_class = ActionSerializer
    queryset = Action.objects.select_related("requested_by")
    lookup_url_kwarg = "action_id"


class MeetingList(ListAPIView[Meeting]):
    """Stored meetings, newest first; POST stores one by its join link (and may
    schedule the bot to join it by itself)."""

    permission_classes = [ReadCanViewWriteCanAct]
    serializer_class = MeetingSerializer
    queryset = Meeting.objects.all()

    @extend_schema(request=MeetingWriteSerializer, responses={201: MeetingSerializer})
    def post(self, request: Request) -> Response:
        form = MeetingWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if not data.get("join_web_url"):
            raise ActionRefusedError("invalid", "Give the meeting's Teams join link.")
        meeting = save_meeting(actor=request.user, client_ip=client_ip(request), **data)
        return Response(MeetingSerializer(meeting).data, status=status.HTTP_201_CREATED)


class MeetingDetail(GenericAPIView[Meeting]):
    """One meeting; PATCH changes its subject, link or schedule."""

    permission_classes = [ReadCanViewWriteCanAct]
    serializer_class = MeetingSerializer

    def get(self, request: Request, meeting_id: int) -> Response:
        meeting = get_object_or_404(Meeting, pk=meeting_id)
        return Response(MeetingSerializer(meeting).data)

    @extend_schema(request=MeetingWriteSerializer, responses=MeetingSerializer)
    def patch(self, request: Request, meeting_id: int) -> Response:
        meeting = get_object_or_404(Meeting, pk=meeting_id)
        form = MeetingWriteSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        current = {
            "subject": meeting.subject,
            "join_web_url": meeting.join_web_url,
            "starts_at": meeting.starts_at,
            "ends_at": meeting.ends_at,
            "auto_join": meeting.auto_join,
            "leave_at_end": meeting.leave_at_end,
        }
        saved = save_meeting(
            actor=request.user,
            meeting=meeting,
            client_ip=client_ip(request),
            **{**current, **form.validated_data},
        )
        return Response(MeetingSerializer(saved).data)


def _joined(joined: services.JoinRequest) -> Response:
    body = JoinResultSerializer(
        {
            "meeting": joined.meeting,
            "action": joined.action,
            "already_in": [c.pk for c in joined.already_in],
        }
    ).data
    # Nothing queued: the bot is there already and ``again`` was not given.
    code = status.HTTP_202_ACCEPTED if joined.action else status.HTTP_409_CONFLICT
    return Response(body, status=code)


class MeetingJoin(GenericAPIView[Meeting]):
    """Have the bot join this stored meeting now. 409 (nothing queued) when it is
    in the meeting already, unless ``again``."""

    permission_classes = [CanAct]
    serializer_class = JoinAgainSerializer

    @extend_schema(
        request=JoinAgainSerializer,
        responses={202: JoinResultSerializer, 409: JoinResultSerializer},
    )
    def post(self, request: Request, meeting_id: int) -> Response:
        meeting = get_object_or_404(Meeting, pk=meeting_id)
        form = JoinAgainSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return _joined(
            services.request_join(
                actor=request.user,
                params={"meeting_id": meeting.pk},
                again=form.validated_data["again"],
                client_ip=client_ip(request),
            )
        )


class JoinByLink(GenericAPIView[Meeting]):
    """Have the bot join a meeting by any Teams join link, or by meeting id and
    passcode; the meeting is stored on the way."""

    permission_classes = [CanAct]
    serializer_class = JoinSerializer

    @extend_schema(
        operation_id="meetings_join_by_link",
        request=JoinSerializer,
        responses={202: JoinResultSerializer, 409: JoinResultSerializer},
    )
    def post(self, request: Request) -> Response:
        form = JoinSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        again = data.pop("again")
        return _joined(
            services.request_join(
                actor=request.user,
                params=data,
                again=again,
                client_ip=client_ip(request),
            )
        )
