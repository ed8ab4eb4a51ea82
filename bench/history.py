"""The call history on PostgreSQL at size: query time per shape, and the export.

Generates, in a database of its own (``--database-url``, created if absent and
migrated), --calls calls over the last year, --participants participants,
--events notification events, plus actions (bot and 20 supervisors), recordings
and IVR sessions, with PostgreSQL's COPY (secondary indexes dropped during the
load and rebuilt after, foreign-key triggers off while copying); prints how long
that took. Then, for each query shape (each single filter, each kind of search,
both sorts), --repeat times: the page's server work (bounded count + keyset page
+ its rows) for page 1, and for page 5 reached through the keyset cursors; prints
p50/p99 and the indexes EXPLAIN shows for page 1. Last, runs
``manage.py export_history`` over every call to a file, once as CSV and once as
JSON Lines, and prints the rows, the time, the rate and the process's peak RSS.

    .venv/bin/python bench/history.py [--calls 1000000] [--participants 5000000]
        [--events 10000000] [--reuse] [--repeat 20]

--reuse keeps data already generated with the same sizes (to re-measure only).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cb_history_bench"

FIRST = [
    "Ada",
    "Alan",
    "Alice",
    "Amir",
    "Ana",
    "Anna",
    "Ben",
    "Bob",
    "Carla",
    "Carol",
    "Chen",
    "Dana",
    "Dave",
    "David",
    "Elena",
    "Emma",
    "Eve",
    "Farid",
    "Grace",
    "Hana",
    "Ivan",
    "Jamal",
    "Jane",
    "Jin",
    "Joao",
    "Jonas",
    "Julia",
    "Karim",
    "Kenji",
    "Lars",
    "Lea",
    "Lee",
    "Lina",
    "Luca",
    "Maria",
    "Mateo",
    "Mei",
    "Mia",
    "Nadia",
    "Noah",
    "Olga",
    "Omar",
    "Paula",
    "Priya",
    "Raj",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tariq",
    "Tom",
    "Uma",
    "Victor",
    "Wei",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Abbott",
    "Adeyemi",
    "Alvarez",
    "Andersen",
    "Bauer",
    "Becker",
    "Bianchi",
    "Brown",
    "Chen",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Gonzalez",
    "Hansen",
    "Hoffmann",
    "Ivanova",
    "Jensen",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Muller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Park",
    "Patel",
    "Petrov",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Smith",
    "Tanaka",
    "Taylor",
    "Wagner",
    "Weber",
    "Wilson",
    "Yamamoto",
    "Zhang",
]
SUBJECTS = [
    "Weekly sync",
    "Quarterly review",
    "Incident bridge",
    "Customer escalation",
    "Sprint planning",
    "Board prep",
    "Sales pipeline",
    "Support standup",
    "Design critique",
    "Budget 2027",
]
KINDS = [("peer_to_peer", 0.6), ("group", 0.25), ("meeting", 0.15)]
DIRECTIONS = [("incoming", 0.7), ("outgoing", 0.28), ("unknown", 0.02)]
IVR_PATHS = [
    " menu menu:1 sales ",
    " menu menu:2 support ",
    " menu menu:2 support support:1 billing ",
    " menu menu:0 operator ",
    " menu ",
]
SUPERVISORS = 20
TABLES = [
    "calls_call",
    "calls_participant",
    "calls_callevent",
    "calls_action",
    "calls_recording",
    "ivr_ivrsession",
]
BLOCK = 20_000


@dataclass(frozen=True)
class Sizes:
    calls: int
    participants: int
    events: int


def _pick(rng: random.Random, table: list[tuple[str, float]]) -> str:
    x, total = rng.random(), 0.0
    for value, share in table:
        total += share
        if x < total:
            return value
    return table[-1][0]


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _phone(rng: random.Random) -> str:
    return f"+1{rng.randrange(2000000000, 9999999999)}"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _text(value: object) -> str:
    """One COPY text-format field."""
    if value is None:
        return r"\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", " ").replace("\n", " ")


def _copy(cursor: Any, table: str, columns: list[str], rows: Iterator[tuple]) -> int:
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        block: list[str] = []
        for row in rows:
            block.append("\t".join(map(_text, row)))
            count += 1
            if len(block) >= BLOCK:
                copy.write("\n".join(block) + "\n")
                block = []
        if block:
            copy.write("\n".join(block) + "\n")
    return count


CALL_COLUMNS = [
    "id",
    "graph_id",
    "graph_key",
    "tenant_id",
    "direction",
    "kind",
    "state",
    "subject",
    "requested_modalities",
    "source",
    "source_display",
    "source_id",
    "targets",
    "callback_uri",
    "call_chain_id",
    "my_participant_id",
    "media_config_kind",
    "media_state_audio",
    "delta_roster",
    "roster_sequence",
    "last_tone",
    "result_code",
    "result_subcode",
    "result_message",
    "version",
    "event_count",
    "created_at",
    "updated_at",
    "established_at",
    "terminated_at",
    "outcome",
    "duration_seconds",
    # Not null, no database default: the waits of calls handed to supervisors,
    # and whom a call was placed or passed to (none here).
    "wait_then",
    "party_display",
    "party_ids",
]


def _calls(sizes: Sizes, rng: random.Random, now: datetime) -> Iterator[tuple]:
    """Calls in time order over the last 365 days; the newest 200 still live."""
    span = 365 * 86400
    step = span / sizes.calls
    start = now - timedelta(seconds=span)
    for i in range(1, sizes.calls + 1):
        created = start + timedelta(seconds=(i - 1) * step + rng.random() * step)
        kind = _pick(rng, KINDS)
        direction = _pick(rng, DIRECTIONS)
        live = i > sizes.calls - 200
        graph_id = _guid(rng)
        caller_id = _phone(rng) if rng.random() < 0.3 else _guid(rng)
        x = rng.random()
        established = terminated = None
        code = subcode = None
        duration = 0
        if live:
            state, outcome = "established", "live"
            established = created + timedelta(seconds=3)
        else:
            state = "terminated"
            if x < 0.06:
                outcome, code, subcode = "failed", rng.choice([408, 480, 500]), 10037
            elif x < 0.10:
                outcome, code, subcode = "transferred", 200, 7015
            elif x < 0.25:
                # Ended while ringing: abandoned when it rang in (call_outcome).
                unanswered = "abandoned" if direction == "incoming" else "unanswered"
                outcome, code, subcode = unanswered, 200, 5001
            else:
                outcome, code, subcode = "answered", 200, rng.choice([4521, 5001])
            if outcome in ("answered", "transferred"):
                established = created + timedelta(seconds=rng.randrange(1, 15))
                duration = int(rng.expovariate(1 / 240))
                terminated = established + timedelta(seconds=duration)
            else:
                terminated = created + timedelta(seconds=rng.randrange(1, 30))
        subject = rng.choice(SUBJECTS) if kind != "peer_to_peer" else ""
        yield (
            i, graph_id, graph_id.replace("-", ""), "", direction, kind, state,
            subject, "[]", None, _name(rng), caller_id, "[]", "", "", "", "", "",
            "f", 0, "", code, subcode, "", 1, 10, created, created, established,
            terminated, outcome, duration,
        )  # fmt: skip


def _participant_counts(sizes: Sizes, kinds: list[str]) -> list[int]:
    """Two people on a peer-to-peer call, more on the others, ``sizes.participants``
    in all."""
    p2p = kinds.count("peer_to_peer")
    others = max(1, len(kinds) - p2p)
    spare = max(0, sizes.participants - 2 * p2p)
    base, extra = divmod(spare, others)
    counts, seen = [], 0
    for kind in kinds:
        if kind == "peer_to_peer":
            counts.append(2)
        else:
            counts.append(base + (1 if seen < extra else 0))
            seen += 1
    return counts


def generate(cursor: Any, sizes: Sizes, seed: int = 7) -> dict[str, int]:
    """Empty the history's tables and fill them; returns the rows per table."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [TABLES],
    )
    indexes = cursor.fetchall()
    cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
    cursor.execute("SET session_replication_role = replica")
    counts: dict[str, int] = {}
    kinds: list[str] = []
    directions: list[str] = []

    def calls() -> Iterator[tuple]:
        for row in _calls(sizes, rng, now):
            kinds.append(row[5])
            directions.append(row[4])
            yield (*row, "", "", "")

    counts["calls"] = _copy(cursor, "calls_call", CALL_COLUMNS, calls())
    people = _participant_counts(sizes, kinds)

    def participants() -> Iterator[tuple]:
        pk = 0
        for call_id, n in enumerate(people, start=1):
            for _ in range(n):
                pk += 1
                phone = rng.random() < 0.15
                yield (
                    pk, call_id, f"p{pk}", f"p{pk}",
                    "phone" if phone else "user",
                    _phone(rng) if phone else _guid(rng), _name(rng), "", "", "f",
                    "f", "f", "f", "f", "[]", 0, "", now, now, now, "",
                )  # fmt: skip

    counts["participants"] = _copy(
        cursor,
        "calls_participant",
        [
            "id",
            "call_id",
            "graph_id",
            "graph_key",
            "identity_kind",
            "identity_id",
            "display_name",
            "identity_tenant_id",
            "role",
            "is_bot",
            "is_muted",
            "is_in_lobby",
            "is_sharing_screen",
            "on_hold",
            "media_streams",
            "roster_sequence",
            "removed_reason",
            "joined_at",
            "updated_at",
            "left_at",
            # Everyone has left: no roster entry of theirs is remembered.
            "entry_digest",
        ],
        participants(),
    )
    per_call, extra = divmod(sizes.events, sizes.calls)

    def events() -> Iterator[tuple]:
        pk = 0
        for call_id in range(1, sizes.calls + 1):
            for seq in range(1, per_call + (1 if call_id <= extra else 0) + 1):
                pk += 1
                yield (
                    pk, call_id, seq, f"{pk:064x}", "updated",
                    f"communications/calls/{call_id}", "call", "", "", "{}", "t", now,
                )  # fmt: skip

    counts["events"] = _copy(
        cursor,
        "calls_callevent",
        [
            "id",
            "call_id",
            "sequence",
            "digest",
            "change_type",
            "resource_url",
            "resource_kind",
            "message_id",
            "tenant_id",
            "payload",
            "applied",
            "received_at",
        ],
        events(),
    )
    supervisors = _supervisors(cursor)
    recorded: list[int] = []
    ivr: list[tuple[int, str]] = []

    def actions() -> Iterator[tuple]:
        pk = 0
        for call_id, (kind, direction) in enumerate(
            zip(kinds, directions, strict=True), start=1
        ):
            todo: list[tuple[str, int | None]] = []
            if direction == "incoming":
                todo.append(("answer", None))
                if rng.random() < 0.3:
                    path = rng.choice(IVR_PATHS)
                    ivr.append((call_id, path))
                    todo += [("play_prompt", None), ("subscribe_to_tone", None)]
                if rng.random() < 0.03:
                    recorded.append(call_id)
                    todo.append(("record_response", None))
            elif direction == "outgoing":
                todo.append(
                    ("place_call" if kind != "meeting" else "join_meeting", None)
                )
            if rng.random() < 0.05:
                who = rng.choice(supervisors)
                human = ["mute_participant", "invite", "hang_up", "transfer"]
                todo += [(rng.choice(human), who) for _ in range(rng.randrange(1, 3))]
            todo.append(("hang_up", None))
            for action_kind, who in todo:
                pk += 1
                yield (
                    pk, call_id, who, action_kind, "", "{}", "completed",
                    str(uuid.UUID(int=pk)), "", "", "", 1, 200, 0, "", "", now, now,
                    now, now,
                )  # fmt: skip

    counts["actions"] = _copy(
        cursor,
        "calls_action",
        [
            "id",
            "call_id",
            "requested_by_id",
            "kind",
            "target",
            "parameters",
            "status",
            "client_request_id",
            "client_context",
            "operation_id",
            "operation_key",
            "attempts",
            "result_code",
            "result_subcode",
            "result_message",
            "error_code",
            "created_at",
            "sent_at",
            "completed_at",
            "updated_at",
        ],
        actions(),
    )
    cursor.execute(
        "SELECT call_id, id FROM calls_action WHERE kind = 'record_response'"
    )
    by_call = dict(cursor.fetchall())
    counts["recordings"] = _copy(
        cursor,
        "calls_recording",
        ["action_id", "call_id", "audio", "size", "created_at"],
        ((by_call[c], c, f"recordings/bench/{c}.wav", 64000, now) for c in recorded),
    )
    counts["ivr_sessions"] = _copy(
        cursor,
        "ivr_ivrsession",
        [
            "call_id",
            "flow_start",
            "flow_steps",
            "current_step",
            "phase",
            "digits",
            "status",
            "outcome",
            "history",
            "path",
            "created_at",
            "updated_at",
            "held",  # not null, no database default
        ],
        (
            (
                c,
                "menu",
                "[]",
                path.split()[-1],
                "done",
                "",
                "completed",
                "",
                "[]",
                path,
                now,
                now,
                False,
            )
            for c, path in ivr
        ),
    )
    cursor.execute("SET session_replication_role = DEFAULT")
    for table in TABLES:
        sql = "SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT coalesce(max(id), 1) FROM {}))"
        cursor.execute(sql.format(table), [table])
    for _, definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")
    return counts


def _supervisors(cursor: Any) -> list[int]:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    ids = []
    for n in range(1, SUPERVISORS + 1):
        user, _ = model.objects.get_or_create(username=f"supervisor{n:02d}")
        ids.append(user.pk)
    return ids


# --- query shapes --------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    name: str
    filters: Any
    sort: Any


def shapes(cursor: Any, tz: Any) -> list[Shape]:
    """Every single filter and search the page offers, with values from the data."""
    from dashboard.history import period_range
    from dashboard.history_query import HistoryFilters, Sort

    def one(sql: str) -> Any:
        cursor.execute(sql)
        row = cursor.fetchone()
        return row[0] if row else None

    name = one("SELECT display_name FROM calls_participant ORDER BY id DESC LIMIT 1")
    identity = one(
        "SELECT identity_id FROM calls_participant WHERE identity_kind = 'user' "
        "ORDER BY id DESC LIMIT 1"
    )
    phone = one(
        "SELECT identity_id FROM calls_participant WHERE identity_kind = 'phone' "
        "ORDER BY id DESC LIMIT 1"
    )
    graph_id = one("SELECT graph_id FROM calls_call ORDER BY id DESC LIMIT 1")
    actor = one("SELECT requested_by_id FROM calls_action WHERE requested_by_id "
                "IS NOT NULL LIMIT 1")  # fmt: skip
    empty = HistoryFilters()
    today = datetime.now(tz).date()
    base: list[tuple[str, Any]] = [
        ("everything", empty),
        ("period today", _period(period_range, "today", today, tz)),
        ("period yesterday", _period(period_range, "yesterday", today, tz)),
        ("period last 7 days", _period(period_range, "7d", today, tz)),
        (
            "date range (a month, a year ago)",
            HistoryFilters(
                since=datetime.now(tz) - timedelta(days=330),
                until=datetime.now(tz) - timedelta(days=300),
            ),
        ),
        ("kind meeting", HistoryFilters(kind="meeting")),
        ("direction outgoing", HistoryFilters(direction="outgoing")),
        ("outcome failed", HistoryFilters(outcome="failed")),
        ("outcome live", HistoryFilters(outcome="live")),
        ("duration 10-20 min", HistoryFilters(min_duration=600, max_duration=1200)),
        ("who acted (a supervisor)", HistoryFilters(actor_id=actor)),
        ("action mute_participant", HistoryFilters(action_kind="mute_participant")),
        ("has recording", HistoryFilters(recording=True)),
        ("no recording", HistoryFilters(recording=False)),
        ("IVR option menu:1", HistoryFilters(ivr="menu:1")),
        ("IVR step billing", HistoryFilters(ivr="billing")),
        ("search participant name", HistoryFilters(q=name)),
        ("search surname", HistoryFilters(q="Yamamoto")),
        ("search AAD object id", HistoryFilters(q=identity)),
        ("search phone number", HistoryFilters(q=phone)),
        ("search meeting subject", HistoryFilters(q="Incident bridge")),
        ("search Graph call id", HistoryFilters(q=graph_id)),
    ]
    found = [Shape(n, f, Sort.NEWEST) for n, f in base]
    found += [
        Shape("sort longest", empty, Sort.LONGEST),
        Shape("sort shortest", empty, Sort.SHORTEST),
        Shape("sort longest + kind meeting", HistoryFilters(kind="meeting"), Sort.LONGEST),
    ]  # fmt: skip
    return found


def _period(period_range: Callable[..., Any], name: str, today: Any, tz: Any) -> Any:
    from dashboard.history_query import HistoryFilters

    since, until = period_range(name, today, tz)
    return HistoryFilters(since=since, until=until)


def serve_page(shape: Shape, pages: int) -> tuple[float, Any]:
    """The server work of the page ``pages`` deep: the bounded count, the keyset
    page and its rows; earlier pages only supply the cursor. Seconds, page.

    Page 1 is a search's first request: what the process remembers of searches
    found common is forgotten first. Page 5 follows pages 1-4, as when someone
    pages through the calls, and may use it."""
    from dashboard.history_query import (
        count_matches,
        forget_common_searches,
        history_page,
        history_rows,
        matching_calls,
    )

    calls = matching_calls(shape.filters)
    after = ""
    for _ in range(pages - 1):
        page = history_page(calls, shape.sort, after=after)
        if page.after is None:
            break
        after = page.after
    if pages == 1:
        forget_common_searches()
    # What one request does: build the query (a search runs here), count, page, rows.
    started = time.perf_counter()
    calls = matching_calls(shape.filters)
    count_matches(calls)
    page = history_page(calls, shape.sort, after=after)
    history_rows(page.calls)
    return time.perf_counter() - started, page


def explain(shape: Shape) -> list[str]:
    """The index names in page 1's plan, and the count's."""
    from dashboard.history_query import matching_calls, ordered

    calls = matching_calls(shape.filters)
    plan = ordered(calls, shape.sort, True)[:51].explain()
    plan += "\n" + calls.order_by()[:10001].explain()
    names = re.findall(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)"
                       r"(?: Backward)? (?:using|on) (\w+)", plan)  # fmt: skip
    return list(dict.fromkeys(names)) or ["(no index: " + plan.splitlines()[0] + ")"]


def pg_milliseconds(shape: Shape) -> float:
    """PostgreSQL's own execution time (EXPLAIN ANALYZE) of page 1 plus the count
    (when the count needs a query), without the round trips and Python of
    ``serve_page`` and without the search's or filter's read of its ids."""
    from dashboard.history_query import (
        COUNT_LIMIT,
        known_count,
        matching_calls,
        ordered,
    )

    calls = matching_calls(shape.filters)
    total = 0.0
    queries = [ordered(calls, shape.sort, True)[:51]]
    if known_count(calls, COUNT_LIMIT) is None:
        queries.append(calls.order_by()[: COUNT_LIMIT + 1])
    for query in queries:
        plan = query.explain(analyze=True)
        found = re.search(r"Execution Time: ([\d.]+) ms", plan)
        total += float(found.group(1)) if found else 0.0
    return total


@contextmanager
def full_collections() -> Iterator[list[float]]:
    """The milliseconds of each full (generation 2) garbage collection of this
    process meanwhile: one lands inside a timed request now and then and is a
    p99 of its own (120-250 ms at load 10), whatever the query did."""
    pauses: list[float] = []
    started: list[float] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(note)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(note)


def quantiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def measure(found: list[Shape], repeat: int, out: Callable[[str], None]) -> list[dict]:
    """p50/p99 in ms of page 1 and page 5 for every shape; prints a table."""
    results = []
    out(
        f"{'shape':38} {'p1 p50':>8} {'p1 p99':>8} {'p5 p50':>8} {'p5 p99':>8} "
        f"{'pg ms':>7}  rows  indexes"
    )
    for shape in found:
        first = [serve_page(shape, 1) for _ in range(repeat)]
        fifth = [serve_page(shape, 5) for _ in range(repeat)]
        p1 = quantiles([t for t, _ in first])
        p5 = quantiles([t for t, _ in fifth])
        rows = len(first[0][1].calls)
        used = explain(shape)
        pg = pg_milliseconds(shape)
        results.append(
            {"shape": shape.name, "p1": p1, "p5": p5, "rows": rows, "indexes": used}
        )
        out(
            f"{shape.name:38} {p1[0] * 1000:8.1f} {p1[1] * 1000:8.1f} "
            f"{p5[0] * 1000:8.1f} {p5[1] * 1000:8.1f} {pg:7.1f}  {rows:4}  "
            f"{', '.join(used)}"
        )
    return results


def export(fmt: str, out: Callable[[str], None], env: dict[str, str]) -> None:
    """Run the export command over every call; print rows, time, rate, peak RSS."""
    target = Path(f"/tmp/history-bench.{fmt}")  # noqa: S108 (a bench's scratch file)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "export_history",
         "--format", fmt, "--output", str(target), "--no-progress"],
        check=True, env=env, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with target.open("rb") as stream:
        rows = sum(1 for _ in stream) - (1 if fmt == "csv" else 0)
    size = target.stat().st_size
    target.unlink()
    note = "" if rss > before else " (peak of an earlier child: at most this)"
    out(
        f"export {fmt}: {rows:,} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s = "
        f"{rows / elapsed:,.0f} rows/s; peak RSS {rss / 1024:.0f} MB{note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--participants", type=int, default=5_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument(
        "--shapes", default="", help="measure only these shapes (comma-separated names)"
    )
    parser.add_argument(
        "--freeze-gc",
        action="store_true",
        help="gc.freeze() once set up, as a server could after start-up: full "
        "collections then skip the start-up objects",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=args.database_url, DJANGO_SETTINGS_MODULE="callbot.settings"
    )
    env.setdefault("SECRET_KEY", "bench-history-" + "x" * 40)
    os.environ.update(env)
    _create_database(args.database_url)

    import django

    django.setup()
    from zoneinfo import ZoneInfo

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    sizes = Sizes(args.calls, args.participants, args.events)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM calls_call")
        have = cursor.fetchone()[0]
        if args.reuse and have == sizes.calls:
            print(f"reusing {have:,} calls already generated")
        else:
            started = time.perf_counter()
            counts = generate(cursor.cursor, sizes)
            took = time.perf_counter() - started
            print(
                "generated "
                + ", ".join(f"{v:,} {k}" for k, v in counts.items())
                + f" in {took:.0f} s (COPY, then indexes and VACUUM ANALYZE)"
            )
        tz = ZoneInfo("Europe/Berlin")
        found = shapes(cursor, tz)
    if args.shapes:
        wanted = {name.strip() for name in args.shapes.split(",")}
        found = [s for s in found if s.name in wanted]
    if args.freeze_gc:
        gc.freeze()
    with full_collections() as pauses:
        measure(found, args.repeat, print)
    print(
        f"full garbage collections while measuring: {len(pauses)}"
        + (f", {min(pauses):.0f}-{max(pauses):.0f} ms each" if pauses else "")
    )
    if not args.no_export:
        for fmt in ("csv", "jsonl"):
            export(fmt, print, env)


def _create_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if not admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
