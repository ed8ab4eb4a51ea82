"""The audit trail: who asked for what, and how the request went.

Every person's request is written here, in the transaction that carries it out;
a refusal is written in a transaction of its own, so it survives the failed
request. Only this module creates ``AuditEntry`` rows for the domain.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from callbot.calls.access import BOT_NAME, ActionRefusedError, Actor
from callbot.calls.models import AuditEntry, Call


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
) -> AuditEntry:
    """Append one entry; the bot (actor None) is named ``callbot``."""
    user = actor if isinstance(actor, User) else None
    return AuditEntry.objects.create(
        actor=user,
        actor_name=(
            actor_name or (user.get_username() if user is not None else BOT_NAME)
        )[:150],
        action=action[:64],
        target=target[:255],
        call=call,
        outcome=outcome[:32],
        detail=detail,
        client_ip=client_ip,
    )


def record_refusal(
    actor: Actor,
    kind: str,
    call_pk: int | None,
    participant_id: str,
    refused: ActionRefusedError,
    client_ip: str | None,
) -> None:
    """Audit a refused request in its own transaction (the request's rolled back)."""
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
