"""The call history's read model: filters, keyset pages, bounded counts, rows.

Pure query building over ``callbot.calls`` and ``callbot.ivr`` rows; no request,
no rendering (``dashboard/history.py`` is the page, ``history_export`` the files).
Only reads.

Speed rests on the summary columns of ``Call`` (``outcome``, ``duration_seconds``,
``source_id``) and the ``call_history_*`` indexes: every single filter is an
index range in start order, so a page is ``LIMIT 51`` on an index and the count
is bounded (``COUNT_LIMIT``) on the same index. Pages are keyset pages on
(start, id) or (duration, id), never OFFSET: page 500 costs what page 1 does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections, transaction
from django.db.models import BooleanField, Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from callbot.calls.kinds import LABELS
from callbot.calls.models import Action, Call, Participant, Recording
from callbot.calls.states import CallDirection, CallKind, CallOutcome, CallState
from callbot.graph.results import describe_result
from callbot.ivr.models import IvrSession, path_token
from dashboard.history_search import SearchSQL, like_escape, search_sql

PAGE_SIZE = 50
# Counts stop here: "more than 10,000 calls match" costs what 10,000 does.
COUNT_LIMIT = 10_000
# A search needs three characters: a one- or two-letter word prefix matches most
# of the history anyway.
SEARCH_MIN = 3
# A search matching at most this many rows is resolved to a list of call ids.
SEARCH_IDS = 10_000
# Rows read to find them: a call matches through several people or actions.
READ_ROWS = 3 * (SEARCH_IDS + 1)
_IVR_TOKEN = re.compile(r"[\w.-]{1,64}(:[\d*#]{1,32})?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The call columns a row shows: loading only these keeps JSON columns (source,
# targets) out of every page and export chunk.
ROW_FIELDS = (
    "graph_id",
    "kind",
    "subject",
    "source_display",
    "source_id",
    "party_display",
    "party_ids",
    "direction",
    "created_at",
    "duration_seconds",
    "state",
    "outcome",
    "result_code",
    "result_subcode",
)


class HistoryFilterError(ValueError):
    """A filter value the history cannot use; the message says which and why."""


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    LONGEST = "longest"
    SHORTEST = "shortest"

    @property
    def column(self) -> str:
        if self in (Sort.NEWEST, Sort.OLDEST):
            return "created_at"
        return "duration_seconds"

    @property
    def descending(self) -> bool:
        return self in (Sort.NEWEST, Sort.LONGEST)


@dataclass(frozen=True)
class HistoryFilters:
    """What the history is narrowed to; every field empty means every call.

    ``since`` is inclusive and ``until`` exclusive (aware datetimes). Durations are
    seconds, inclusive.
    """

    q: str = ""
    since: datetime | None = None
    until: datetime | None = None
    kind: str = ""
    direction: str = ""
    outcome: str = ""
    min_duration: int | None = None
    max_duration: int | None = None
    actor_id: int | None = None
    action_kind: str = ""
    recording: bool | None = None
    ivr: str = ""

    def __post_init__(self) -> None:
        q = self.q.strip()
        if q and len(q) < SEARCH_MIN:
            raise HistoryFilterError(
                f"Search for at least {SEARCH_MIN} characters (got {q!r})."
            )
        if self.ivr and not _IVR_TOKEN.fullmatch(self.ivr):
            raise HistoryFilterError(
                "IVR path: a step id (sales) or a step and the keys pressed "
                "there (menu:1)."
            )
        low, high = self.min_duration, self.max_duration
        if low is not None and high is not None and low > high:
            raise HistoryFilterError("The shortest duration is above the longest.")
        if self.since and self.until and self.since >= self.until:
            raise HistoryFilterError("The date range ends before it starts.")

    def as_json(self) -> dict[str, Any]:
        """The filters that are set, in JSON types (for the audit trail)."""
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            if value in ("", None):
                continue
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


def _distinct_call_ids(rows: QuerySet[Any]) -> tuple[list[int], bool]:
    """(ids, complete): the distinct call ids of ``rows`` (a one-column
    ``values_list`` of call ids), complete when there are at most ``SEARCH_IDS``;
    otherwise more than ``SEARCH_IDS`` of them (or an incomplete list, when the
    rows read held too many repeats to tell).

    Reads at most ``READ_ROWS`` rows: a common match stops early instead of
    reading all of them. ``work_mem`` is raised for this one transaction so the
    bitmap of a GIN match (a word, an IVR step) stays exact (with the default
    4 MB, 100,000 matches turn it lossy and every row of those pages is checked
    again: 3x slower)."""
    with transaction.atomic(using=rows.db):
        if connections[rows.db].vendor == "postgresql":
            with connections[rows.db].cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '32MB'")
        # A tenth more than needed: a few calls match twice (two people called
        # Yamamoto), and a second, longer read would cost more than the margin.
        limit = SEARCH_IDS + 1 + SEARCH_IDS // 10
        read = _id_list(rows, limit)
        if len(read) == limit and len(set(read)) <= SEARCH_IDS < READ_ROWS:
            limit = READ_ROWS  # repeats: read further to tell
            read = _id_list(rows, limit)
    seen = sorted({pk for pk in read if pk is not None})
    return seen, len(read) < limit and len(seen) <= SEARCH_IDS


def _id_list(rows: QuerySet[Any], limit: int) -> list[Any]:
    """The first ``limit`` values of ``rows`` (a one-column ``values_list``). On
    PostgreSQL as one array in one row: read row by row, 10,001 ids were 10,001
    tuples, ten young garbage collections per request and, every few requests,
    a full one of the whole process (80-370 ms at load 4-10 on the bench: most of
    the common searches' p99s)."""
    sliced = rows[:limit]
    connection_ = connections[rows.db]
    if connection_.vendor != "postgresql":
        return [value for (value,) in sliced]
    try:
        sql, params = sliced.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:  # a filter Django knows matches nothing
        return []
    with connection_.cursor() as cursor:
        # The SQL is Django's for ``rows``; values travel as its parameters.
        cursor.execute(f"SELECT array_agg(found.v) FROM ({sql}) AS found(v)", params)  # noqa: S608
        (values,) = cursor.fetchone()
    return list(values or [])


@dataclass(frozen=True)
class _Narrowed:
    """A filter's ``Q`` and how many distinct calls it matches: at least
    ``matches``, or exactly when ``exact``."""

    q: Q
    matches: int
    exact: bool = False


def _probe(table: str, where: str, params: Sequence[Any]) -> Q:
    """``EXISTS`` a row of ``table`` on this call matching ``where``, probed per
    call through the table's ``call_id`` index. ``OFFSET 0`` keeps PostgreSQL from
    turning it into a hashed subplan, which would read every match first: walking
    the calls in page order and probing each stops after 51 matches."""
    # table and where are this module's constants; the values are parameters.
    head = f'EXISTS (SELECT 1 FROM "{table}" m WHERE m.call_id = "calls_call"."id" '  # noqa: S608
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    sql = head + f"AND ({where}){fence})"
    return Q(RawSQL(sql, tuple(params), output_field=BooleanField()))  # noqa: S611


class _CommonSearches:
    """Searches found common on the calls' own columns lately (more than
    SEARCH_IDS subjects or callers match), in this process: the next pages of
    such a search skip the read that found it, 10,001 rows from all over the
    table (35-55 ms of a request's 60-90 on the bench, at load 7-10).

    A common search stays common while calls are only added; the retention
    purge deletes, so a verdict is kept ``TTL`` seconds: the count may say
    "more than 10,000" that long after a purge left fewer. The rows of a page
    never come from here."""

    TTL = 300.0
    SIZE = 256

    def __init__(self) -> None:
        self._found: dict[tuple[str, int], tuple[float, int]] = {}
        # Requests run on several threads of one process.
        self._lock = threading.Lock()

    def get(self, q: str, bound: int) -> int | None:
        """How many own matches the read found (more than ``bound``), if lately."""
        with self._lock:
            kept = self._found.get((q, bound))
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]

    def put(self, q: str, bound: int, matches: int) -> None:
        with self._lock:
            if len(self._found) >= self.SIZE:
                self._found.pop(next(iter(self._found)))  # the oldest
            self._found[(q, bound)] = (time.monotonic() + self.TTL, matches)

    def forget(self) -> None:
        with self._lock:
            self._found.clear()


_COMMON = _CommonSearches()


def forget_common_searches() -> None:
    """Forget every search found common (tests, and the bench's first pages)."""
    _COMMON.forget()


def _search(q: str) -> _Narrowed:
    """Calls where anyone ever on them, the caller, the subject or the Graph call
    id matches ``q``, as ``history_search`` reads its shape (a whole id, a phone
    number or words), each shape through its own index.

    A search naming a few calls (a person, a number, an id) becomes a list of
    call ids for the page and the count. A common word (a surname on thousands of
    calls) instead walks the calls in page order and tests each one (``_probe``):
    a page then reads a few hundred calls rather than every match, and the count
    is known to exceed ``SEARCH_IDS`` already. Words common on subjects or
    callers but on few people test only each call's own columns on that walk
    (``_common_words``), and a search found common is remembered a while
    (``_CommonSearches``)."""
    search = search_sql(q.strip())
    where, params = search.probe_where()
    common = _probe("calls_participant", where, params) | search.own_test()
    known = _COMMON.get(q.strip(), SEARCH_IDS)
    if known is not None:
        return _Narrowed(_common_words(search) or common, known)
    # The calls' own columns first (one index, each row a distinct call): a
    # subject or caller on more than SEARCH_IDS calls is common already, and the
    # people's index (five times the rows) need not be read at all.
    own = _id_list(
        Call.objects.filter(search.own).order_by().values_list("id"), SEARCH_IDS + 1
    )
    if len(own) > SEARCH_IDS:
        _COMMON.put(q.strip(), SEARCH_IDS, len(own))
        return _Narrowed(_common_words(search) or common, len(own))
    people_ids = (
        Participant.objects.filter(search.people_q()).order_by().values_list("call_id")
    )
    people, complete = _distinct_call_ids(people_ids)
    found = sorted(set(people).union(own))
    if complete and len(found) <= SEARCH_IDS:
        return _Narrowed(_among(found), len(found), exact=True)
    return _Narrowed(common, len(found))


def _common_words(search: SearchSQL) -> Q | None:
    """Words on more than SEARCH_IDS calls' subjects or callers (a meeting's
    subject), as a test of the call's own columns or a short list of ids: the
    calls whose few matching people, or whose whole ids (Graph call id, caller
    id), name them. The page then walks the start index testing only each
    call's own columns, instead of also probing each call's people on the way
    (page 1 of "Incident bridge" on the bench: 5,400 buffers, 8-14 ms in
    PostgreSQL, before; 72 buffers, under 1 ms, after).

    None, for the per-call probe, when not words, or when the people matching
    are many (a first name, a surname): reading them costs more than probing."""
    if not search.own_words or search.own_exact is None or _many_people(search):
        return None
    # One query (each of its round trips counts at this size): the people's
    # calls and the calls named by a whole id. Few people are expected, so a
    # default work_mem keeps the bitmap exact.
    people = Participant.objects.filter(search.people_q()).values_list("call_id")
    exact = Call.objects.filter(search.own_exact).values_list("id")
    read = [
        pk for (pk,) in people.order_by().union(exact.order_by(), all=True)[:READ_ROWS]
    ]
    ids = sorted(set(read))
    if len(read) == READ_ROWS or len(ids) > SEARCH_IDS:
        return None
    words = search.own_words_q()
    return _among(ids) | words if ids else words


# PostgreSQL's estimate of the people a search matches above which reading
# their call ids costs more than probing each call of a page: reading 1,001 of
# Yamamoto's 106,000 took 240 ms on the bench (the GIN bitmap is built whole).
PEOPLE_ESTIMATE = 1_000


def _many_people(search: SearchSQL) -> bool:
    """Whether PostgreSQL expects more than PEOPLE_ESTIMATE people to match (its
    statistics of the name index's lexemes; a plan, no rows read). It only picks
    between two ways to the same calls. SQLite: never (small histories)."""
    if connection.vendor != "postgresql":
        return False
    people = Participant.objects.filter(search.people_q()).order_by()
    plan = json.loads(people.values_list("call_id").explain(format="json"))
    return float(plan[0]["Plan"]["Plan Rows"]) > PEOPLE_ESTIMATE


def _among(ids: list[int]) -> Q:
    """The calls ``ids``: one array parameter on PostgreSQL (a list of 10,000
    placeholders costs more to build and send than the lookup itself)."""
    if connection.vendor == "postgresql":
        sql = '"calls_call"."id" = ANY(%s::bigint[])'
        return Q(RawSQL(sql, (ids,), output_field=BooleanField()))  # noqa: S611
    return Q(pk__in=ids)


def _like(text: str) -> str:
    return f"%{like_escape(text)}%"


def _through(
    rows: QuerySet[Any], table: str, where: str, params: Sequence[Any]
) -> _Narrowed:
    """Calls with at least one of ``rows`` (which have a ``call`` foreign key);
    ``where`` and ``params`` say the same of a row of ``table`` in SQL.

    Usually few calls match such a filter (one supervisor's, those with a
    recording): their ids are read first (at most ``SEARCH_IDS``) and the page and
    count look them up by key. Walking the calls in start order and probing
    ``rows`` for each, as PostgreSQL plans an EXISTS under a LIMIT, reads the
    whole history for a rare match. A filter matching more is probed per call
    (``_probe``) and its count is already known to exceed ``SEARCH_IDS``.
    """
    found, complete = _distinct_call_ids(rows.order_by().values_list("call_id"))
    if complete:
        return _Narrowed(_among(found), len(found), exact=True)
    return _Narrowed(_probe(table, where, params), len(found))


# A whole token of the path (ivr 0008's index on PostgreSQL; the same expression).
_PATH_TOKENS = "string_to_array(btrim({t}.path), ' ') @> ARRAY[%s]::text[]"


def _ivr(value: str) -> _Narrowed:
    """Calls whose IVR path holds the step or option ``value`` (``menu:1``)."""
    step, _, keys = value.partition(":")
    token = path_token(step, keys)
    if connection.vendor == "postgresql":
        where, params = _PATH_TOKENS, [token.strip()]
        sql = where.format(t='"ivr_ivrsession"')
        rows = IvrSession.objects.filter(
            Q(RawSQL(sql, tuple(params), output_field=BooleanField()))  # noqa: S611
        )
        return _through(rows, "ivr_ivrsession", where.format(t="m"), params)
    return _through(
        IvrSession.objects.filter(path__contains=token),
        "ivr_ivrsession",
        "m.path LIKE %s ESCAPE '\\'",
        [_like(token)],
    )


def matching_calls(filters: HistoryFilters) -> QuerySet[Call]:
    """Every call the filters let through, unordered."""
    f = filters
    calls = Call.objects.only(*ROW_FIELDS)
    narrowed: list[_Narrowed] = []
    if f.q.strip():
        narrowed.append(_search(f.q))
    if f.actor_id is not None:
        narrowed.append(
            _through(
                Action.objects.filter(requested_by=f.actor_id),
                "calls_action",
                "m.requested_by_id = %s",
                [f.actor_id],
            )
        )
    if f.action_kind:
        narrowed.append(
            _through(
                Action.objects.filter(kind=f.action_kind),
                "calls_action",
                "m.kind = %s",
                [f.action_kind],
            )
        )
    if f.recording:
        narrowed.append(
            _through(Recording.objects.all(), "calls_recording", "TRUE", [])
        )
    if f.ivr:
        narrowed.append(_ivr(f.ivr))
    for n in narrowed:
        calls = calls.filter(n.q)
    if f.since is not None:
        calls = calls.filter(created_at__gte=f.since)
    if f.until is not None:
        calls = calls.filter(created_at__lt=f.until)
    for name in ("kind", "direction", "outcome"):
        value = getattr(f, name)
        if value:
            calls = calls.filter(**{name: value})
    if f.min_duration is not None:
        calls = calls.filter(duration_seconds__gte=f.min_duration)
    if f.max_duration is not None:
        calls = calls.filter(duration_seconds__lte=f.max_duration)
    if f.recording is False:
        calls = calls.exclude(Exists(Recording.objects.filter(call=OuterRef("pk"))))
    # What a filter read on the way says of the count when it is the only one:
    # exactly or at least this many calls match (the count need not read them).
    if len(narrowed) == 1 and len(f.as_json()) == 1:
        calls.history_matches = narrowed[0]  # type: ignore[attr-defined]
    return calls


def known_count(calls: QuerySet[Call], limit: int) -> tuple[int, bool] | None:
    """``count_matches`` without a query when ``matching_calls`` read enough ids on
    the way (a single filter through another table, or a search); else None."""
    known: _Narrowed | None = getattr(calls, "history_matches", None)
    if known is not None and (known.exact or known.matches > limit):
        return min(known.matches, limit), known.matches > limit
    return None


def count_matches(calls: QuerySet[Call], limit: int = COUNT_LIMIT) -> tuple[int, bool]:
    """(count, more): the exact count up to ``limit``; ``more`` when there are
    more than ``limit`` (the count then says ``limit``)."""
    known = known_count(calls, limit)
    if known is not None:
        return known
    found = calls.order_by()[: limit + 1].count()
    return min(found, limit), found > limit


# --- keyset pages -----------------------------------------------------------------
def sort_value(call: Call, sort: Sort) -> int:
    """The call's position on the sort column as an integer (microseconds since
    the epoch for the start, seconds for the duration)."""
    if sort.column == "created_at":
        return (call.created_at - _EPOCH) // timedelta(microseconds=1)
    return call.duration_seconds


def encode_cursor(call: Call, sort: Sort) -> str:
    return f"{sort_value(call, sort)}.{call.pk}"


def decode_cursor(text: str, sort: Sort) -> tuple[Any, int]:
    """(column value, id) of a cursor; raises HistoryFilterError if malformed."""
    value, _, pk = text.partition(".")
    try:
        number, ident = int(value), int(pk)
        if ident < 0 or number < 0:
            raise ValueError(text)
        if sort.column == "created_at":
            return _EPOCH + timedelta(microseconds=number), ident
    except (ValueError, OverflowError):
        raise HistoryFilterError(f"Not a page cursor: {text[:40]!r}.") from None
    return number, ident


def _beyond(sort: Sort, cursor: tuple[Any, int], forward: bool) -> Q:
    """Rows after ``cursor`` in display order (forward) or before it. The plain
    range on the column comes first so the index scan starts at the cursor;
    the OR then breaks ties by id."""
    column = sort.column
    value, pk = cursor
    down = sort.descending == forward
    op = "lt" if down else "gt"
    near = f"{column}__{'lte' if down else 'gte'}"
    return Q(**{near: value}) & (
        Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"pk__{op}": pk})
    )


def ordered(calls: QuerySet[Call], sort: Sort, forward: bool) -> QuerySet[Call]:
    down = sort.descending == forward
    sign = "-" if down else ""
    return calls.order_by(f"{sign}{sort.column}", f"{sign}id")


@dataclass
class HistoryPage:
    calls: list[Call]
    # Cursors for the next and previous pages; None at either end.
    after: str | None
    before: str | None


def history_page(
    calls: QuerySet[Call],
    sort: Sort,
    *,
    after: str = "",
    before: str = "",
    size: int = PAGE_SIZE,
) -> HistoryPage:
    """One page of ``calls`` in ``sort`` order: the first, the one following the
    ``after`` cursor or the one preceding the ``before`` cursor. Reads ``size + 1``
    rows to know whether there is more in the direction of travel, and one row
    to know whether there is any in the other."""
    forward = not before
    cursor = decode_cursor(after or before, sort) if (after or before) else None
    rows = calls if cursor is None else calls.filter(_beyond(sort, cursor, forward))
    found = _rows_by_ids(ordered(rows, sort, forward), size + 1)
    more = len(found) > size
    found = found[:size]
    if not forward:
        found.reverse()
    behind = False
    if cursor is not None and found:
        edge = found[0] if forward else found[-1]
        back = _beyond(sort, (_cursor_value(edge, sort), edge.pk), not forward)
        behind = calls.filter(back).exists()
    has_next, has_prev = (more, behind) if forward else (behind, more)
    return HistoryPage(
        calls=found,
        after=encode_cursor(found[-1], sort) if has_next and found else None,
        before=encode_cursor(found[0], sort) if has_prev and found else None,
    )


def _rows_by_ids(rows: QuerySet[Call], limit: int) -> list[Call]:
    """The first ``limit`` of ``rows`` in their order: their ids, then the calls
    by key. A filter that is a list of ids (a search naming a few calls, who
    acted) then walks the start index alone; reading whole rows on the walk
    fetched every call passed over, not only the page's (page 1 of "who acted"
    on the bench: 1,032 buffers, 7-19 ms, before; 86 buffers, 1.3 ms, after)."""
    ids = list(rows.values_list("pk", flat=True)[:limit])
    by_id = Call.objects.only(*ROW_FIELDS).in_bulk(ids)
    return [by_id[pk] for pk in ids if pk in by_id]


def _cursor_value(call: Call, sort: Sort) -> Any:
    return call.created_at if sort.column == "created_at" else call.duration_seconds


# --- rows ---------------------------------------------------------------------------
@dataclass
class HistoryRow:
    """One call as the history shows and exports it."""

    id: int
    graph_id: str
    kind: str
    subject: str
    caller: str
    caller_id: str
    direction: str
    started_at: datetime
    duration_seconds: int
    state: str
    outcome: str
    result: str
    participants: int
    actions: list[tuple[str, int]] = field(default_factory=list)
    actors: list[str] = field(default_factory=list)
    recordings: int = 0
    ivr_path: str = ""

    @property
    def live(self) -> bool:
        return self.state != CallState.TERMINATED

    @property
    def actions_text(self) -> str:
        """``answer, play_prompt x2``."""
        return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in self.actions)

    @property
    def actions_label(self) -> str:
        """``Answer, Play Prompt x2``: the timeline's words for the page (the export
        keeps the values, ``actions_text``)."""
        words = ((LABELS.get(k, k), n) for k, n in self.actions)
        return ", ".join(w if n == 1 else f"{w} x{n}" for w, n in words)

    @property
    def people_text(self) -> str:
        """How many people, as the board says it: a peer-to-peer call Graph sent
        no roster for is ``1:1``, not a misleading 0 (the export keeps the count)."""
        if not self.participants and self.kind == CallKind.PEER_TO_PEER:
            return "1:1"
        return str(self.participants)

    @property
    def duration_text(self) -> str:
        """``4:05`` or ``1:02:03``."""
        minutes, seconds = divmod(self.duration_seconds, 60)
        hours, minutes = divmod(minutes, 60)
        if hours:
            return f"{hours}:{minutes:02d}:{seconds:02d}"
        return f"{minutes}:{seconds:02d}"

    @property
    def outcome_label(self) -> str:
        return str(CallOutcome(self.outcome).label)

    @property
    def kind_label(self) -> str:
        """``Peer-to-peer``: the board's and the call page's word for the kind
        (the export keeps the value)."""
        try:
            return str(CallKind(self.kind).label)
        except ValueError:
            return self.kind


def ivr_path_text(path: str) -> str:
    """``" menu menu:1 sales "`` as ``menu > 1 > sales``."""
    words: list[str] = []
    for token in path.split():
        step, _, keys = token.partition(":")
        words.append(keys if keys else step)
    return " > ".join(words)


def _with_party(caller: str, party: str, direction: str) -> str:
    """Who a call was with, as the history's caller column says it: on a call the
    bot placed, whom it called (its own source says nothing); on one it received,
    the caller, then whom the call was passed to (``Ana Lopez → Lee Okafor``)."""
    if not party:
        return caller
    if direction == CallDirection.OUTGOING or not caller:
        return party
    return f"{caller} → {party}"


def _untitled(call: Call) -> str:
    """A meeting call's subject when the meeting has none (joined by its link)."""
    return "Teams meeting" if call.kind == CallKind.MEETING else ""


def history_rows(calls: Sequence[Call]) -> list[HistoryRow]:
    """The rows of ``calls`` in their order, in five queries whatever their number."""
    ids = [c.pk for c in calls]
    people: dict[int, int] = dict(
        Participant.objects.filter(call_id__in=ids)
        .values_list("call_id")
        .annotate(n=Count("id"))
        .values_list("call_id", "n")
    )
    actions: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for call_id, kind, n in (
        Action.objects.filter(call_id__in=ids)
        .values_list("call_id", "kind")
        .annotate(n=Count("id"))
        .order_by("call_id", "kind")
        .values_list("call_id", "kind", "n")
    ):
        actions[call_id].append((kind, n))
    actors: dict[int, list[str]] = defaultdict(list)
    for call_id, name in (
        Action.objects.filter(call_id__in=ids, requested_by__isnull=False)
        .values_list("call_id", "requested_by__username")
        .distinct()
        .order_by("call_id", "requested_by__username")
    ):
        actors[call_id].append(name)
    recordings: dict[int, int] = dict(
        Recording.objects.filter(call_id__in=ids)
        .values_list("call_id")
        .annotate(n=Count("id"))
        .values_list("call_id", "n")
    )
    paths = dict(
        IvrSession.objects.filter(call_id__in=ids).values_list("call_id", "path")
    )
    return [
        HistoryRow(
            id=c.pk,
            graph_id=c.graph_id,
            kind=c.kind,
            subject=c.subject or _untitled(c),
            caller=_with_party(c.source_display, c.party_display, c.direction),
            caller_id=_with_party(
                c.source_id, " ".join(c.party_ids.split()), c.direction
            ),
            direction=c.direction,
            started_at=c.created_at,
            duration_seconds=c.duration_seconds,
            state=c.state,
            outcome=c.outcome,
            result=describe_result(c.result_code, c.result_subcode),
            participants=people.get(c.pk, 0),
            actions=actions.get(c.pk, []),
            actors=actors.get(c.pk, []),
            recordings=recordings.get(c.pk, 0),
            ivr_path=ivr_path_text(paths.get(c.pk, "")),
        )
        for c in calls
    ]


def chunks(
    calls: QuerySet[Call], sort: Sort, size: int = 2000
) -> Iterable[list[HistoryRow]]:
    """Every row of ``calls`` in ``sort`` order, ``size`` at a time, each chunk a
    keyset query: memory holds one chunk, whatever the number of calls."""
    after = ""
    while True:
        chunk, after = next_chunk(calls, sort, after, size)
        if chunk:
            yield chunk
        if not after:
            return


def next_chunk(
    calls: QuerySet[Call], sort: Sort, after: str, size: int
) -> tuple[list[HistoryRow], str]:
    """The rows following the ``after`` cursor and the cursor to continue from
    (``""`` at the end)."""
    rows = calls
    if after:
        rows = calls.filter(_beyond(sort, decode_cursor(after, sort), True))
    found = list(ordered(rows, sort, True)[:size])
    more = len(found) == size
    return history_rows(found), encode_cursor(found[-1], sort) if more else ""
