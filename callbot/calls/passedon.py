"""A call Callbot passed on (rejected, redirected, transferred): its history
summary learns it once Graph has accepted the request.

Whom the call went to joins its party (``CallSummary.add_party``: the history
shows the call with them and finds it by them), and the call is classified
again (``states.call_outcome``): Teams may have ended it before the request's
answer came back, and a call Callbot declined is not abandoned.
"""

from __future__ import annotations

from django.db import transaction

from callbot.calls.models import Action, Call

PASSED_ON = frozenset({Action.Kind.REJECT, Action.Kind.REDIRECT, Action.Kind.TRANSFER})


def after_sent(action: Action) -> None:
    """Record in the call's summary an ``action`` Graph accepted, if it passes
    the call on; one locked read and at most one save of the call."""
    if action.kind not in PASSED_ON or action.call_id is None:
        return
    target = action.parameters.get("target")
    with transaction.atomic():
        call = (
            Call.objects.select_for_update(no_key=True)
            .filter(pk=action.call_id)
            .first()
        )
        if call is None:
            return
        before = call.outcome
        changed = call.add_party([target] if target else [])
        call.refresh_summary()
        if changed or call.outcome != before:
            call.save(update_fields=["party_display", "party_ids", "outcome"])
