"""Sign-in throttling's two visible ends (django-axes counts the failures).

* ``locked_out_response``: the sign-in page again, saying in words that sign-in is
  locked and for how long (``AXES_LOCKOUT_CALLABLE``), with 429.
* ``audit_lockout``: each lock-out django-axes signals becomes an audit entry
  (``sign_in_locked_out``, the username tried, the client address); signing in
  and out and failed sign-ins are audited by ``auditlog``.

Connected from ``DashboardConfig.ready``. Writes through ``callbot.calls.audit``.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from axes.helpers import get_cool_off, get_failure_limit
from axes.signals import user_locked_out

from callbot.calls import audit

logger = logging.getLogger(__name__)

LOCKED_OUT_ACTION = "sign_in_locked_out"


def in_words(duration: timedelta) -> str:
    """``15 minutes``, ``2 hours``, ``30 seconds`` (rounded up)."""
    seconds = max(1, math.ceil(duration.total_seconds()))
    if seconds % 3600 == 0:
        count, unit = seconds // 3600, "hour"
    elif seconds >= 60:
        count, unit = math.ceil(seconds / 60), "minute"
    else:
        count, unit = seconds, "second"
    return f"{count} {unit}{'' if count == 1 else 's'}"


def lockout_message(cool_off: timedelta | None) -> str:
    if cool_off is None:
        return (
            "Too many failed sign-ins for this account or from this address. "
            "Sign-in stays locked until an admin unlocks it."
        )
    return (
        "Too many failed sign-ins for this account or from this address. "
        f"Try again in {in_words(cool_off)}; each further attempt starts the wait "
        "again."
    )


def locked_out_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The sign-in page with the lock-out in words, answered 429."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    return render(
        request,
        "registration/login.html",
        {
            "form": form,
            "locked_out": lockout_message(get_cool_off(request)),
            "next": request.POST.get("next", request.GET.get("next", "")),
        },
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


@receiver(user_locked_out, dispatch_uid="dashboard.audit_lockout")
def audit_lockout(
    sender: Any,
    request: HttpRequest,
    username: str | None,
    ip_address: str | None,
    **kwargs: Any,
) -> None:
    """Record the lock-out; a failure to record must not turn into a 500 here."""
    credentials = getattr(request, "axes_credentials", None)
    cool_off = get_cool_off(request)
    try:
        # A savepoint: a failed write must not break the sign-in's transaction.
        with transaction.atomic():
            audit.record(
                AnonymousUser(),
                LOCKED_OUT_ACTION,
                (username or "")[:255],
                actor_name=username or "anonymous",
                outcome="refused",
                detail={
                    "failures": getattr(request, "axes_failures_since_start", None),
                    "failure_limit": get_failure_limit(request, credentials),
                    "cool_off_seconds": (
                        int(cool_off.total_seconds()) if cool_off is not None else None
                    ),
                },
                client_ip=ip_address or None,
            )
    except Exception:
        logger.exception(
            "could not audit a sign-in lock-out", extra={"username": username}
        )
