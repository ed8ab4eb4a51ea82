"""The audit trail: who asked for what, and how the request went.

Every person's request is written here, in the transaction that carries it out;
a refusal is written in a transaction of its own, so it survives the failed
request; an action's final outcome (``lifecycle.finish``) is written beside the
change that sets it, linked to the request by the action's id. Only this module
creates ``AuditEntry`` rows (``AuditEntry.save`` chains them: docs/audit.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from callbot.calls.access import BOT_NAME, ActionRefusedError, Actor
from callbot.calls.models import Action, AuditEntry, Call


def record(
    actor: Actor,
    action: str,
    target: str,
    call: Call | None = None,
    *,
    outcome: str,
    detail: dict[str, Any],
    client_ip: str | None = None,
    actor_name: str | None = None,
    action_ref: int | None = None,
) -> AuditEntry:
    """Append one entry; the bot (actor None) is named ``callbot``.

    ``actor`` may be a user, None (the bot) or any other object standing for
    someone not signed in (then ``actor_name`` says who). Runs in the caller's
    transaction and holds the chain's lock until it ends.
    """
    user = actor if isinstance(actor, User) else None
    by_bot = actor is None and actor_name is None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=(
            actor_name or (user.get_username() if user is not None else BOT_NAME)
        )[:150],
        by_bot=by_bot,
        action=action[:64],
        target=target[:255],
        call=call,
        action_ref=action_ref,
        outcome=outcome[:32],
        detail=detail,
        client_ip=client_ip,
    )


def record_outcome(action: Action) -> AuditEntry:
    """Audit an action's final outcome with Graph's result, as its requester.

    Called by ``lifecycle.finish`` once the action's final fields are set, in
    the transaction that saves them. ``detail.request`` is the sequence of the
    entry that requested it (absent for actions queued before the trail linked
    them).
    """
    request = (
        AuditEntry.objects.filter(action_ref=action.pk, outcome="requested")
        .order_by("sequence")
        .values("sequence", "actor_id", "actor_name", "by_bot")
        .first()
    )
    entry = AuditEntry(
        actor_id=request["actor_id"] if request else action.requested_by_id,
        actor_name=(
            request["actor_name"]
            if request
            else action.requested_by.get_username()
            if action.requested_by is not None
            else BOT_NAME
        )[:150],
        by_bot=request["by_bot"] if request else action.requested_by_id is None,
        action=action.kind[:64],
        target=action.target[:255],
        call_id=action.call_id,
        action_ref=action.pk,
        outcome=action.status[:32],
        detail={
            "action_id": action.pk,
            "request": request["sequence"] if request else None,
            "result_code": action.result_code,
            "result_subcode": action.result_subcode,
            "result_message": action.result_message,
            "error_code": action.error_code,
            "operation_id": action.operation_id,
            "attempts": action.attempts,
        },
    )
    entry.save()
    return entry


def record_refusal(
    actor: Actor,
    kind: str,
    call_pk: int | None,
    participant_id: str,
    refused: ActionRefusedError,
    client_ip: str | None,
) -> None:
    """Audit a refused request in its own transaction (the request's rolled back).

    What was asked is kept as it came, but for NUL characters (shown as U+FFFD),
    which PostgreSQL cannot store: the refusal would fail to be audited."""
    kind = str(kind).replace("\x00", "\ufffd")
    participant_id = participant_id.replace("\x00", "\ufffd")
    with transaction.atomic():
        call = Call.objects.filter(pk=call_pk).first() if call_pk is not None else None
        name = None
        if actor is not None and not isinstance(actor, User):
            name = "anonymous"
        record(
            actor,
            str(kind)[:64],
            participant_id,
            call,
            outcome="refused",
            detail={"code": refused.code, "message": refused.message},
            client_ip=client_ip,
            actor_name=name,
        )
