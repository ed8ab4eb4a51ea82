"""The dashboard's role checks as DRF permission classes: the API asks the very
functions the pages and the socket ask (``dashboard.permissions``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from dashboard.permissions import can_act, can_audit, can_listen, can_view


class _RoleCheck(BasePermission):
    check: Callable[[Any], bool]
    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        return type(self).check(request.user)


class CanView(_RoleCheck):
    """Read calls, actions, meetings, recordings' metadata, alerts."""

    check = staticmethod(can_view)
    message = "Your role may not see calls."


class CanAct(_RoleCheck):
    """Request actions and join or schedule meetings (``calls.request_action``)."""

    check = staticmethod(can_act)
    message = "Your role may watch calls but not act on them."


class CanListen(_RoleCheck):
    """Download recordings (``calls.listen_recording``)."""

    check = staticmethod(can_listen)
    message = "Your role may not hear recordings."


class CanAudit(_RoleCheck):
    """Read and export the whole audit trail (``calls.read_audit_trail``)."""

    check = staticmethod(can_audit)
    message = "Your role may not read the audit trail."


class ReadCanViewWriteCanAct(BasePermission):
    """Reads for viewers, writes (POST, PATCH ...) for those who may act."""

    message = "Your role may watch calls but not act on them."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return can_view(request.user)
        return can_act(request.user)
