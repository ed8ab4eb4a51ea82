"""What people do around the calls, into the audit trail: signing in and out,
failed sign-ins, and every change made in the Django admin (call policies, IVR
flows, prompts, meetings, users and their roles).

* Sign-in, failed sign-in and sign-out come from Django's auth signals.
* Admin changes come from the admin's own ``LogEntry`` rows, written in the same
  transaction as the change: one audit entry per LogEntry (``admin_add``,
  ``admin_change``, ``admin_delete``; the target names the model and object).
  The admin's bulk "delete selected" action logs with ``bulk_create``, which
  sends no signal, so it is switched off site-wide: deletions in the admin go
  one by one, and each is audited.

Connected from ``DashboardConfig.ready``; writes only through
``callbot.calls.audit``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest

from callbot.calls import audit

logger = logging.getLogger(__name__)

SIGN_IN = "sign_in"
SIGN_OUT = "sign_out"
ADMIN_ACTIONS = {
    ADDITION: "admin_add",
    CHANGE: "admin_change",
    DELETION: "admin_delete",
}
ADMIN_OUTCOMES = {ADDITION: "added", CHANGE: "changed", DELETION: "deleted"}

admin.site.disable_action("delete_selected")


def client_ip(request: HttpRequest | None) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in, dispatch_uid="dashboard.audit_sign_in")
def audit_sign_in(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    audit.record(
        user,  # type: ignore[arg-type]
        SIGN_IN,
        user.get_username(),
        outcome="succeeded",
        # {"method": "microsoft"} for Sign in with Microsoft (dashboard/microsoft.py).
        detail=dict(getattr(request, "signin_detail", {})),
        client_ip=client_ip(request),
    )


@receiver(user_login_failed, dispatch_uid="dashboard.audit_sign_in_failed")
def audit_sign_in_failed(
    sender: Any,
    credentials: dict[str, Any],
    request: HttpRequest | None = None,
    **kwargs: Any,
) -> None:
    """A wrong password or unknown name: the name tried, never the password
    (Django masks it in ``credentials`` already)."""
    username = str(credentials.get("username") or "")[:150]
    audit.record(
        AnonymousUser(),
        SIGN_IN,
        username,
        outcome="failed",
        detail={},
        client_ip=client_ip(request),
        actor_name=username or "anonymous",
    )


@receiver(user_logged_out, dispatch_uid="dashboard.audit_sign_out")
def audit_sign_out(
    sender: Any,
    request: HttpRequest | None,
    user: AbstractBaseUser | None,
    **kwargs: Any,
) -> None:
    if user is None:
        return  # no one was signed in
    audit.record(
        user,  # type: ignore[arg-type]
        SIGN_OUT,
        user.get_username(),
        outcome="succeeded",
        detail={},
        client_ip=client_ip(request),
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="dashboard.audit_admin_change")
def audit_admin_change(
    sender: Any, instance: LogEntry, created: bool, **kwargs: Any
) -> None:
    """One entry per admin change, in the change's transaction."""
    if not created:
        return
    flag = int(instance.action_flag)
    content_type = (
        ContentType.objects.get_for_id(instance.content_type_id)
        if instance.content_type_id
        else None
    )
    model = (
        f"{content_type.app_label}.{content_type.model}" if content_type else "unknown"
    )
    try:
        change: Any = json.loads(instance.change_message or "[]")
    except ValueError:
        change = instance.change_message
    audit.record(
        instance.user,  # type: ignore[arg-type]
        ADMIN_ACTIONS.get(flag, "admin_change"),
        f"{model}: {instance.object_repr}"[:255],
        outcome=ADMIN_OUTCOMES.get(flag, "changed"),
        detail={
            "model": model,
            "object_id": str(instance.object_id),
            "change": change,
        },
    )
