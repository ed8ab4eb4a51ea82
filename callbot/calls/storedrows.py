"""Participant rows as the database returned them, unconverted, for ingest.

A full roster of a large meeting names a thousand people of whom one has
changed: reading a row's key, presence, sequence and entry digest from the raw
tuple is what lets the roster skip the others (``CallWork.glance``), and a
``Participant`` is built (its values converted) only for a row that is about to
change. Rows the caller names as unchanged (by entry digest) come without their
other columns, packed as one JSON array, which is what reading a thousand rows
would otherwise cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Lookup, Q
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import MULTI

import orjson

from callbot.calls.models import Call, Participant


class Among(Lookup):  # type: ignore[type-arg]
    """``graph_key__among=keys``: the key is one of ``keys``, sent as one
    parameter (an array on PostgreSQL, a JSON array read by ``json_each`` on
    SQLite). ``__in`` prepares and binds a parameter per key: a full roster names
    a thousand, which cost more to prepare than the rows cost to read."""

    lookup_name = "among"
    prepare_rhs = False

    def as_sql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper
    ) -> tuple[str, list[Any]]:
        lhs, params = self.process_lhs(compiler, connection)
        keys = list(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*params, keys]
        # The column's SQL (lhs) is Django's; the keys are a parameter.
        sql = f"{lhs} IN (SELECT value FROM json_each(%s))"  # noqa: S608
        return sql, [*params, orjson.dumps(keys).decode()]


Participant._meta.get_field("graph_key").register_lookup(Among)
Participant._meta.get_field("entry_digest").register_lookup(Among)

# What a row read without its other columns keeps: enough to tell whether an
# entry changed it (``CallWork.glance``) and whether it is present.
LIGHT_FIELDS = ["call_id", "graph_key", "left_at", "roster_sequence", "entry_digest"]

# The columns of a participant row as ``read_rows`` returns them, and where.
NAMES = [f.attname for f in Participant._meta.concrete_fields]
AT_LEFT, AT_DIGEST = NAMES.index("left_at"), NAMES.index("entry_digest")
_AT_LIGHT = [NAMES.index(name) for name in LIGHT_FIELDS]


@dataclass(frozen=True)
class Layout:
    """Where a raw participant row holds what ``CallWork`` reads of it unbuilt,
    and how to build the row: the query's column order and Django's converters for its values."""

    names: list[str]
    call_id: int
    graph_key: int
    left_at: int
    roster_sequence: int
    entry_digest: int
    convert: Callable[[list[Any]], list[Any]]

    def adopt(self, other: Layout, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        """``raw``, a row in ``other``'s column order, in this one's."""
        if other.names == self.names:
            return raw
        at = {name: i for i, name in enumerate(other.names)}
        return tuple(raw[at[name]] for name in self.names)


@dataclass
class StoredRows:
    """Participant rows of one call as the database returned them, by key;
    ``light``: the keys of the rows read without their other columns (None in
    their place), which are read again before one is built."""

    layout: Layout
    raw: dict[str, tuple[Any, ...]]
    call_id: int = 0
    light: set[str] = field(default_factory=set)

    def build(self, raw: tuple[Any, ...], call: Call) -> Participant:
        p = Participant.from_db(
            Participant.objects.db, self.layout.names, self.layout.convert(list(raw))
        )
        p.call = call
        return p


def read_rows(
    query: Q,
    light: Q | None = None,
    known: dict[int, dict[str, tuple[Any, ...]]] | None = None,
) -> list[StoredRows]:
    """The participant rows ``query`` selects, unconverted, grouped by call;
    those ``light`` selects with ``LIGHT_FIELDS`` alone (``light`` selects rows
    by their entry digest, which names their key: rows ``query`` would select,
    or rows the caller has loaded already). ``known``: light rows in ``NAMES``
    order, by call id and key, that the caller knows stand so in the database
    (``rostercache``), returned with the others as if read light, where
    ``query`` returned no row of their key.

    One statement: the whole rows, then one more row holding the light ones,
    aggregated as a JSON array in the database (``_light_rows``). Read as rows
    with their other columns NULL, a thousand of them cost about what whole ones
    do (the driver builds every column of every row); as one array, a tenth."""
    queryset = Participant.objects.filter(query).order_by()
    if light is not None:
        queryset = queryset.exclude(light)
    compiler = queryset.query.get_compiler(queryset.db)
    connection = connections[queryset.db]
    if light is None:
        chunks = compiler.execute_sql(MULTI)
        raw_rows = [tuple(row) for chunk in chunks or () for row in chunk]
        names = [col.target.attname for col, _, _ in compiler.select]
    else:
        sql, params = compiler.as_sql()
        names = [col.target.attname for col, _, _ in compiler.select]
        summary, summary_params = _light_rows(light, names, connection)
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} UNION ALL {summary}", [*params, *summary_params])
            raw_rows = [tuple(row) for row in cursor.fetchall()]
    converters = compiler.get_converters([col for col, _, _ in compiler.select])

    def convert(values: list[Any]) -> list[Any]:
        for position, (functions, expression) in converters.items():
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        return values

    layout = Layout(
        names=names,
        call_id=names.index("call_id"),
        graph_key=names.index("graph_key"),
        left_at=names.index("left_at"),
        roster_sequence=names.index("roster_sequence"),
        entry_digest=names.index("entry_digest"),
        convert=convert,
    )
    pk, packed = names.index("id"), names.index("graph_id")
    by_call: dict[int, StoredRows] = {}

    def stored_rows(call_id: int) -> StoredRows:
        stored = by_call.get(call_id)
        if stored is None:
            stored = by_call[call_id] = StoredRows(layout, {}, call_id)
        return stored

    for raw in raw_rows:
        if raw[pk] is not None:
            stored_rows(raw[layout.call_id]).raw.setdefault(raw[layout.graph_key], raw)
            continue
        blank: list[Any] = [None] * len(names)
        at_call, at_key, at_left = layout.call_id, layout.graph_key, layout.left_at
        at_sequence, at_digest = layout.roster_sequence, layout.entry_digest
        rows: dict[str, tuple[Any, ...]] = {}
        light_keys: set[str] = set()
        last_call = None
        for call_id, key, present, sequence, digest in orjson.loads(raw[packed]):
            if call_id != last_call:  # the array comes grouped by call, mostly
                stored = stored_rows(call_id)
                rows, light_keys, last_call = stored.raw, stored.light, call_id
            if key in rows:
                continue
            blank[at_call], blank[at_key] = call_id, key
            blank[at_left] = None if present else _LEFT
            blank[at_sequence] = sequence
            blank[at_digest] = digest
            rows[key] = tuple(blank)
            light_keys.add(key)
    # In practice the query's columns are ``NAMES``, in that order.
    order = None if names == NAMES else [NAMES.index(name) for name in names]
    for call_id, known_rows in (known or {}).items():
        stored = stored_rows(call_id)
        added = known_rows.keys() - stored.raw.keys()
        if order is None:
            stored.raw.update((key, known_rows[key]) for key in added)
        else:
            stored.raw.update(
                (key, tuple(known_rows[key][at] for at in order)) for key in added
            )
        stored.light |= added
    return list(by_call.values())


def light_row(p: Participant) -> tuple[Any, ...]:
    """``p`` as a light row in ``NAMES`` order."""
    row: list[Any] = [None] * len(NAMES)
    for at, name in zip(_AT_LIGHT, LIGHT_FIELDS, strict=True):
        row[at] = getattr(p, name)
    row[AT_LEFT] = None if p.left_at is None else _LEFT
    return tuple(row)


def slim(raw: tuple[Any, ...]) -> tuple[Any, ...]:
    """A whole row in ``NAMES`` order as a light one."""
    row: list[Any] = [None] * len(NAMES)
    for at in _AT_LIGHT:
        row[at] = raw[at]
    row[AT_LEFT] = None if raw[AT_LEFT] is None else _LEFT
    return tuple(row)


# Stands for the time a participant read light left at: never built, only told
# from None.
_LEFT = "left"


def _light_rows(
    query: Q, names: list[str], connection: BaseDatabaseWrapper
) -> tuple[str, list[Any]]:
    """A ``SELECT`` of one row with ``names``'s columns, NULL but for
    ``graph_id``, which holds ``LIGHT_FIELDS`` of each participant row ``query``
    selects (presence for ``left_at``) as a JSON array of arrays; ``id`` NULL
    tells it from a participant row."""
    queryset = Participant.objects.filter(query).order_by().values_list("pk")
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    table = connection.ops.quote_name(Participant._meta.db_table)
    columns = ", ".join(
        f"{table}.{connection.ops.quote_name(column)}"
        for column in ["call_id", "graph_key"]
    )
    rest = f"{table}.{connection.ops.quote_name('left_at')} IS NULL, " + ", ".join(
        f"{table}.{connection.ops.quote_name(column)}"
        for column in ["roster_sequence", "entry_digest"]
    )
    if connection.vendor == "postgresql":
        packed = f"COALESCE(json_agg(json_build_array({columns}, {rest})), '[]')::text"
    else:
        packed = f"json_group_array(json_array({columns}, {rest}))"
    select = ", ".join(packed if name == "graph_id" else "NULL" for name in names)
    # Django wrote "SELECT <the id column> FROM <the table> WHERE ..."; the
    # columns are ours, the values parameters.
    rest_of_query = sql[sql.index(" FROM ") :]
    return f"SELECT {select}{rest_of_query}", list(params)
