"""Write many rows' values in one statement: ``UPDATE … FROM (VALUES …)``.

Django's ``bulk_update`` builds a ``CASE WHEN pk = … THEN …`` per field per row,
which costs more to compile than the rows cost to write; ``update_rows`` sends the
rows' values once, as a ``VALUES`` list joined to the table on its primary key:

    WITH v(pk, c0, c1) AS (VALUES (%s, %s, %s), …)
    UPDATE "t" SET "a" = v.c0, "b" = v.c1 FROM v WHERE "t"."id" = v.pk

PostgreSQL and SQLite (3.33 and later) both take this form. On PostgreSQL the first
row's values are cast to their columns' types, which types the whole ``VALUES``
list. The caller must hold the rows (or their owner's) locks: each row gets every
named field's current value in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model

# Rows per statement: SQLite's default cap on bound values is 32,766.
CHUNK_ROWS = 500


def update_rows(
    model: type[Model], rows: Sequence[Model], fields: Sequence[str]
) -> int:
    """Write ``fields`` of ``rows`` (saved instances of ``model``) in one statement
    per ``CHUNK_ROWS`` rows; returns the number of statements sent."""
    if not rows or not fields:
        return 0
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    meta = model._meta
    columns: list[Field[Any, Any]] = [_concrete(meta.pk)]
    columns += [_concrete(meta.get_field(f)) for f in fields]
    pk = columns[0]
    names = ["pk", *(f"c{i}" for i in range(len(fields)))]
    cast = connection.vendor == "postgresql"
    first_row = ", ".join(
        f"CAST(%s AS {field.db_type(connection)})" if cast else "%s"
        for field in columns
    )
    other_row = ", ".join(["%s"] * len(columns))
    table = quote(meta.db_table)
    assignments = ", ".join(
        f"{quote(field.column)} = v.{name}"
        for field, name in zip(columns[1:], names[1:], strict=True)
    )
    sent = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            values = ", ".join(
                [f"({first_row})", *[f"({other_row})"] * (len(chunk) - 1)]
            )
            params = [
                field.get_db_prep_save(getattr(row, field.attname), connection)
                for row in chunk
                for field in columns
            ]
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {values}) "  # noqa: S608
                f"UPDATE {table} SET {assignments} "
                f"FROM v WHERE {table}.{quote(pk.column)} = v.pk",
                params,
            )
            sent += 1
    return sent


def _concrete(field: object) -> Field[Any, Any]:
    if not isinstance(field, Field) or not field.concrete:
        raise ValueError(f"{field!r} is not a column")
    return field
