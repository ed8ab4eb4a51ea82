"""The audit trail: who asked for what, and how the request went.

Every person's request is written here, in the transaction that carries it out;
a refusal is written in a transaction of its own, so it survives the failed
request; an action's final outcome (``lifecycle.finish``) is written beside the
change that sets it, linked to the request by the action's id. Only this module
creates ``AuditEntry`` rows (``AuditEntry.save`` chains them: docs/audit.md).

Appending takes the chain's lock, held until the transaction ends, so every
process's appends wait for the transaction holding it. A transaction that wraps
its work in ``written_last`` appends its entries when that work is done, at the
end of the block and still inside the transaction: the lock is then held for
the appends and the commit, not for the rest of a webhook batch or an IVR step.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import connections, router, transaction

from callbot.calls.access import BOT_NAME, ActionRefusedError, Actor
from callbot.calls.models import Action, AuditEntry, Call


@dataclass
class _Level:
    """One ``written_last`` block: its transaction depth and the appends it holds."""

    depth: int
    appends: list[Callable[[], object]] = field(default_factory=list)


# Per thread, as Django's connections are: the open ``written_last`` blocks.
_blocks = threading.local()


def _depth() -> int | None:
    """How deep the audit database's atomic blocks are nested; None outside one."""
    connection = connections[router.db_for_write(AuditEntry)]
    return len(connection.savepoint_ids) if connection.in_atomic_block else None


@contextmanager
def written_last() -> Iterator[None]:
    """Hold back the entries this block records until the block ends, then
    append them in order (still in the caller's transaction).

    Use it right inside the block's ``transaction.atomic()``:
    ``with transaction.atomic(), audit.written_last():``. Only entries recorded
    at that depth wait: one recorded inside a nested atomic block is appended at
    once, so rolling that savepoint back still takes its entry with it. A block
    nested in another (a service called from an IVR step) hands its entries to
    the outer one when it ends without an error; an error drops them, as the
    rollback drops what they were about. ``record`` returns the entry unsaved
    meanwhile.
    """
    depth = _depth()
    if depth is None:
        raise RuntimeError("audit.written_last needs an atomic block")
    stack: list[_Level] = _blocks.__dict__.setdefault("stack", [])
    level = _Level(depth)
    stack.append(level)
    try:
        yield
    finally:
        stack.pop()
    if stack:
        stack[-1].appends.extend(level.appends)
        return
    for append in level.appends:
        append()


def _held(append: Callable[[], object]) -> bool:
    """Give ``append`` to the innermost ``written_last`` block if this is its
    depth; False (append now) otherwise."""
    stack: list[_Level] | None = getattr(_blocks, "stack", None)
    if not stack or stack[-1].depth != _depth():
        return False
    stack[-1].appends.append(append)
    return True


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
    transaction and holds the chain's lock until it ends (inside
    ``written_last``: from the block's end, the entry unsaved until then).
    """
    user = actor if isinstance(actor, User) else None
    by_bot = actor is None and actor_name is None
    entry = AuditEntry(
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
    if not _held(entry.save):
        entry.save()
    return entry


def record_outcome(action: Action) -> None:
    """Audit an action's final outcome with Graph's result, as its requester.

    Called by ``lifecycle.finish`` once the action's final fields are set, in
    the transaction that saves them. ``detail.request`` is the sequence of the
    entry that requested it (absent for actions queued before the trail linked
    them). Inside ``written_last`` it is written at the block's end, after the
    entries recorded before it (its request's, when both are in the block).

    The action's fields are read then: the caller has set them all by the time
    the block ends.
    """
    if not _held(lambda: _record_outcome(action)):
        _record_outcome(action)


def _record_outcome(action: Action) -> None:
    request = _request_of(action.pk)
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


def _request_of(action_pk: int) -> dict[str, Any] | None:
    """The first "requested" entry of an action: its sequence and who asked.

    Plain SQL, not a queryset: every action's outcome asks it, and building the
    queryset cost Django more CPU than the database spent answering it.
    """
    with connections[router.db_for_read(AuditEntry)].cursor() as cursor:
        cursor.execute(_request_sql(), [action_pk, "requested"])
        row = cursor.fetchone()
    if row is None:
        return None
    sequence, actor_id, actor_name, by_bot = row
    return {
        "sequence": sequence,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "by_bot": bool(by_bot),
    }


@functools.lru_cache(maxsize=1)
def _request_sql() -> str:
    quote = connections[router.db_for_read(AuditEntry)].ops.quote_name
    meta = AuditEntry._meta
    table = quote(meta.db_table)
    fields: list[Any] = [
        meta.get_field(name) for name in ("sequence", "actor", "actor_name", "by_bot")
    ]
    columns = ", ".join(quote(field.column) for field in fields)
    action_ref = quote(meta.get_field("action_ref").column)
    outcome = quote(meta.get_field("outcome").column)
    sequence = quote(meta.get_field("sequence").column)
    # Only our own quoted names and placeholders are interpolated.
    return (
        f"SELECT {columns} FROM {table} WHERE {action_ref} = %s "  # noqa: S608
        f"AND {outcome} = %s ORDER BY {sequence} LIMIT 1"
    )


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
