"""The statements a worker sends for every action it performs, in plain SQL: the
action's call locked with only its version read, and a held action's guarded
move out of ``queued``.

Each runs several times per answered IVR call; building them as querysets cost
Django more CPU than the database spent answering them (bench/README.md, the
ivr_cpu section). Only ``lifecycle`` writes through them; they import only the
models.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from django.db import connection

from callbot.calls.models import Action, Call
from callbot.calls.states import ActionStatus


def _column(field: Any) -> str:
    return str(field.column)


def update_queued(action_pk: int, fields: dict[str, Any]) -> bool:
    """``UPDATE … WHERE pk = … AND status = 'queued'`` of ``fields`` (plain
    values, datetimes aware); whether the row was still queued.

    Plain SQL, not ``QuerySet.update``: every action performed is marked sent
    here (three times per answered IVR call), and building the update cost
    Django more CPU than the database spent on it.
    """
    names = tuple(fields)
    values = [
        connection.ops.adapt_datetimefield_value(v)
        if isinstance(v, datetime)
        else str(v)
        if isinstance(v, str)
        else v
        for v in fields.values()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _update_queued_sql(names), [*values, action_pk, ActionStatus.QUEUED.value]
        )
        return bool(cursor.rowcount)


@functools.lru_cache(maxsize=8)
def _update_queued_sql(names: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    meta = Action._meta
    sets = ", ".join(f"{quote(_column(meta.get_field(n)))} = %s" for n in names)
    table = quote(meta.db_table)
    pk = quote(meta.pk.column)
    status = quote(meta.get_field("status").column)
    # Only our own quoted names and placeholders are interpolated.
    return f"UPDATE {table} SET {sets} WHERE {pk} = %s AND {status} = %s"  # noqa: S608


def locked_version(call_id: int) -> Call | None:
    """The call locked, with only its id and version read (what a bump needs),
    as ``.only("id", "version")`` would load it.

    Plain SQL, not a queryset: it runs for every action marked sent (three times
    per answered IVR call), and building the locking queryset cost Django more
    CPU than the database spent answering it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_locked_version_sql(), [call_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return Call.from_db(connection.alias, ["id", "version"], [row[0], row[1]])


@functools.lru_cache(maxsize=1)
def _locked_version_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(Call._meta.db_table)
    pk = quote(Call._meta.pk.column)
    version = quote(Call._meta.get_field("version").column)
    lock = (
        " " + connection.ops.for_update_sql(no_key=True)
        if connection.features.has_select_for_update
        else ""
    )
    # Only our own quoted names are interpolated.
    return f"SELECT {pk}, {version} FROM {table} WHERE {pk} = %s{lock}"  # noqa: S608
