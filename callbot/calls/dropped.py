"""The bot dropped from a call it lacked group-call permission for, in words.

Microsoft's calling docs: "If your bot doesn't have permissions to participate in
group calls and if a participant adds another participant to the call, your bot is
dropped from the call"; the older beta page names the permission: "If escalation is
initiated by another participant and the bot does not have join-group-call
permission, your bot is dropped from the call." The result code of that ``deleted``
notification is not documented (contract §11.2 lists "some of the common" codes);
the emulator sends 403/7504 with a message naming the permission it lacked
(docs/emulator.md), and Callbot recognises that code. A permission named in the
message wins over the default, so a real message naming another one is honoured.

Recognising is pure (``dropped_reason``); ``note_drop`` is the hook ingest calls,
inside its transaction, when a call ends this way: one ``bot.dropped`` audit entry
and a live ``calls.notice`` on the board's group after commit, which the pages show
and an alerting system can subscribe to. Must not import services or ingest.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q

from callbot.calls import alerts, audit, live
from callbot.calls.models import AlertKind, Call
from callbot.calls.states import CallState

# (code, subcode) of a call's resultInfo meaning "dropped: no group-call permission".
DROPPED_RESULTS = frozenset({(403, 7504)})
# The permission that keeps a bot in a call a participant escalates to a group call.
GROUP_CALL_PERMISSION = "Calls.JoinGroupCall.All"
NOTICE_KIND = "bot.dropped"

_PERMISSION = re.compile(r"\b(?:Calls|OnlineMeetings)\.[A-Za-z]+\.(?:All|Chat)\b")


def is_dropped(code: int | None, subcode: int | None) -> bool:
    """True when a call's end result says the bot was dropped for lack of permission."""
    return (code, subcode) in DROPPED_RESULTS


def missing_permission(message: str) -> str:
    """The permission a drop's result message names, else ``Calls.JoinGroupCall.All``."""
    found = _PERMISSION.search(message or "")
    return found.group(0) if found else GROUP_CALL_PERMISSION


def dropped_reason(code: int | None, subcode: int | None, message: str) -> str:
    """One sentence for people: what happened and which permission would have kept
    the bot in the call; "" when the result is not a drop."""
    if not is_dropped(code, subcode):
        return ""
    return (
        "Teams dropped the bot when this call became a group call: the app lacks "
        f"{missing_permission(message)}, which would have kept it in the call."
    )


def call_dropped_reason(call: Call) -> str:
    """``dropped_reason`` of a stored call's end result."""
    return dropped_reason(call.result_code, call.result_subcode, call.result_message)


def note_drop(call: Call, now: datetime) -> None:
    """Record that the bot was dropped from ``call`` and announce it after commit.

    Called by ingest, in its transaction, once: when the call becomes terminated
    with a drop result. Appends a ``bot.dropped`` AuditEntry (actor: the bot) and
    registers a ``calls.notice`` for the live-calls group.
    """
    reason = call_dropped_reason(call)
    if not reason:
        return
    notice = notice_shape(call, now)
    audit.record(
        None,
        NOTICE_KIND,
        notice["title"],
        call,
        outcome="dropped",
        detail={
            "permission": notice["permission"],
            "result_code": call.result_code,
            "result_subcode": call.result_subcode,
            "result_message": call.result_message[:500],
            "reason": reason,
        },
    )
    live.publish_notice_on_commit(notice)
    alerts.raise_alert(AlertKind.BOT_DROPPED, call, f"{notice['title']}: {reason}")


def notice_shape(call: Call, at: datetime | None = None) -> dict[str, Any]:
    """The live notice for a dropped call (JSON types only)."""
    return {
        "kind": NOTICE_KIND,
        "call_id": call.pk,
        "title": call.subject or call.source_display or call.graph_id,
        "text": call_dropped_reason(call),
        "permission": missing_permission(call.result_message),
        "at": live.iso(at or call.terminated_at),
    }


def recent_notices(
    now: datetime, *, hours: float = 24, limit: int = 20
) -> list[dict[str, Any]]:
    """Notices for calls the bot was dropped from in the last ``hours``, newest
    first: the board shows them to whoever opens it later."""
    dropped_results = reduce(
        or_, (Q(result_code=c, result_subcode=s) for c, s in DROPPED_RESULTS)
    )
    calls = Call.objects.filter(
        dropped_results,
        state=CallState.TERMINATED,
        terminated_at__gte=now - timedelta(hours=hours),
    ).order_by("-terminated_at")[:limit]
    return [notice_shape(call) for call in calls]
