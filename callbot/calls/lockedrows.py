"""Querysets that every answered call runs several times, compiled once per
connection and then sent as plain SQL: the rows an IVR step or an action's
outcome locks and loads (the call, its running session, the action), the call
a webhook batch names, the actions a state change settles, and the inbox's
next page of stored batches.

Building and compiling a queryset cost Django more CPU than the database spent
answering it (0.6 to 0.8 ms against about 0.1 ms on PostgreSQL for a locked
call, bench/README.md, the ivr_cpu section), and an answered call runs a dozen
of these between the worker and the applier. ``first`` and ``rows`` build the
queryset once with marker values in place of its arguments, keep the compiled
statement and the compiler's converters, and from then on only execute the
statement and make the models from the rows, as ``QuerySet.first()`` and
``list(queryset)`` would: the same SQL, the same instances. ``present`` is
ingest's "which of these digests are stored?" as plain SQL.

Only querysets of one model without ``select_related`` or annotations, whose
arguments are plain values compared in the WHERE clause, are taken. Imports
nothing of Callbot's.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=models.Model)

# Marker arguments: values no real id takes, found again in the compiled
# parameters to learn where each argument goes (inside a 32-bit integer's
# range: Django compiles an out-of-range id to an empty result, no SQL).
_MARKERS = tuple(-(2_000_000_000 + i) for i in range(8))


@dataclass(frozen=True)
class _Statement:
    sql: str
    # For each parameter: the argument's index, or None for a constant.
    slots: tuple[int | None, ...]
    constants: tuple[Any, ...]
    compiler: SQLCompiler
    converters: dict[int, Any]
    init_list: tuple[str, ...]
    start: int
    end: int
    locks: bool


# Per thread and connection: Django's connections are per thread, and the
# compiler keeps the one it compiled with (its converters may read it).
_cache = threading.local()


def _statements(
    connection: BaseDatabaseWrapper,
) -> dict[str, _Statement]:
    by_connection: weakref.WeakKeyDictionary[BaseDatabaseWrapper, dict[str, _Statement]]
    by_connection = _cache.__dict__.setdefault("by", weakref.WeakKeyDictionary())
    return by_connection.setdefault(connection, {})


def first(
    name: str,
    build: Callable[..., models.QuerySet[M]],
    *args: Any,
    using: str = "default",
) -> M | None:
    """``build(*args).first()``, with ``build`` called and compiled once per
    connection (``name`` keys it: one name, one ``build``).

    ``build`` must use each argument only as a value compared in its WHERE
    clause (a filter on an id), never to shape the query, since it is called
    with marker values in their place.
    """
    found = _run(name, build, args, using, one=True)
    return found[0] if found else None


def rows(
    name: str,
    build: Callable[..., models.QuerySet[M]],
    *args: Any,
    using: str = "default",
) -> list[M]:
    """``list(build(*args))``, compiled once per connection as ``first`` is;
    ``build``'s queryset must be ordered (a slice of it is taken as it is)."""
    return _run(name, build, args, using, one=False)


def present(
    model: type[models.Model],
    name: str,
    values: Sequence[Any],
    using: str | None = None,
) -> set[Any]:
    """Which of ``values`` ``model``'s field ``name`` holds: ``set(model.objects
    .filter(<name>__in=values).values_list(name, flat=True))`` as plain SQL,
    cached per number of values (a webhook batch asks it of its notifications'
    digests, twice per batch). For a field whose values the database returns
    as given (text, integers)."""
    if not values:
        return set()
    using = using or router.db_for_read(model)
    with connections[using].cursor() as cursor:
        cursor.execute(_present_sql(model, name, len(values), using), list(values))
        return {row[0] for row in cursor.fetchall()}


@functools.lru_cache(maxsize=64)
def _present_sql(model: type[models.Model], name: str, count: int, using: str) -> str:
    quote = connections[using].ops.quote_name
    field: Any = model._meta.get_field(name)
    column = quote(field.column)
    table = quote(model._meta.db_table)
    marks = ", ".join(["%s"] * count)
    # Only our own quoted names and placeholders are interpolated.
    return f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"  # noqa: S608


def _run(
    name: str,
    build: Callable[..., models.QuerySet[M]],
    args: tuple[Any, ...],
    using: str,
    *,
    one: bool,
) -> list[M]:
    connection = connections[using]
    statements = _statements(connection)
    statement = statements.get(name)
    if statement is None:
        statement = statements[name] = _compile(build, len(args), using, one=one)
    if statement.locks and connection.get_autocommit():
        raise TransactionManagementError(
            "select_for_update cannot be used outside of a transaction."
        )
    params = [
        statement.constants[i] if slot is None else args[slot]
        for i, slot in enumerate(statement.slots)
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, params)
        found = cursor.fetchmany(1) if one else cursor.fetchall()
    if not found:
        return []
    if statement.converters:
        found = list(statement.compiler.apply_converters(found, statement.converters))
    model: type[M] = statement.compiler.query.model  # type: ignore[assignment]
    names = list(statement.init_list)
    return [
        model.from_db(using, names, row[statement.start : statement.end])
        for row in found
    ]


def _compile(
    build: Callable[..., Any], count: int, using: str, *, one: bool
) -> _Statement:
    if count > len(_MARKERS):
        raise ValueError(f"at most {len(_MARKERS)} arguments")
    queryset = build(*_MARKERS[:count])
    if one:
        # As ``QuerySet.first()`` builds it.
        if not queryset.ordered:
            queryset = queryset.order_by("pk")
        queryset = queryset[:1]
    elif not queryset.ordered:
        raise ValueError("rows() needs an ordered queryset")
    query = queryset.query
    if query.select_related or query.annotations or query.extra:
        raise ValueError("only plain querysets of one model are compiled once")
    compiler = query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    # A text column's filter gets the marker as text.
    where: dict[int | str, int] = {m: i for i, m in enumerate(_MARKERS[:count])}
    where.update({str(m): i for m, i in list(where.items())})
    slots = tuple(
        where.get(p) if isinstance(p, int | str) and not isinstance(p, bool) else None
        for p in params
    )
    if sorted({s for s in slots if s is not None}) != list(range(count)):
        raise ValueError("every argument must appear as a parameter")
    klass_info = compiler.klass_info
    if klass_info is None or klass_info.get("related_klass_infos"):
        raise ValueError("only plain querysets of one model are compiled once")
    fields: Sequence[int] = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    select = compiler.select
    return _Statement(
        sql=sql,
        slots=slots,
        constants=tuple(params),
        compiler=compiler,
        converters=compiler.get_converters(
            [s[0] for s in select[0 : compiler.col_count]]
        ),
        init_list=tuple(f[0].target.attname for f in select[start:end]),
        start=start,
        end=end,
        # As the compiler checks it: where the database has row locks.
        locks=bool(query.select_for_update)
        and connections[using].features.has_select_for_update,
    )
