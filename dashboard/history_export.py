"""The call history as files: CSV and JSON Lines, written a chunk at a time.

``lines`` (sync, for the command) and ``alines`` (async, for the page under ASGI,
where Django would otherwise read a sync iterator whole into a list before sending)
yield text a chunk at a time; each chunk is one keyset query (``history_query``),
so memory holds one chunk whatever the number of calls. Only reads; the callers
write the audit entry.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import tzinfo
from typing import Any

from django.db.models import QuerySet

from asgiref.sync import sync_to_async

from callbot.calls.models import Call
from dashboard.history_query import HistoryRow, Sort, chunks, next_chunk

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
EXTENSIONS = {"csv": "csv", "jsonl": "jsonl"}
CHUNK = 2000
COLUMNS = [
    "id",
    "graph_id",
    "kind",
    "subject",
    "caller",
    "caller_id",
    "direction",
    "started_at",
    "duration_seconds",
    "state",
    "outcome",
    "result",
    "participants",
    "actions",
    "actors",
    "recordings",
    "ivr_path",
]


def row_json(row: HistoryRow, tz: tzinfo) -> dict[str, Any]:
    """A row in JSON types; the start in ``tz`` with its offset."""
    return {
        "id": row.id,
        "graph_id": row.graph_id,
        "kind": row.kind,
        "subject": row.subject,
        "caller": row.caller,
        "caller_id": row.caller_id,
        "direction": row.direction,
        "started_at": row.started_at.astimezone(tz).isoformat(),
        "duration_seconds": row.duration_seconds,
        "state": row.state,
        "outcome": row.outcome,
        "result": row.result,
        "participants": row.participants,
        "actions": dict(row.actions),
        "actors": row.actors,
        "recordings": row.recordings,
        "ivr_path": row.ivr_path,
    }


def _csv_cells(row: HistoryRow, tz: tzinfo) -> list[Any]:
    data = row_json(row, tz)
    data["actions"] = row.actions_text
    data["actors"] = ", ".join(row.actors)
    return [data[c] for c in COLUMNS]


def encoder(fmt: str, tz: tzinfo) -> tuple[str, Callable[[list[HistoryRow]], str]]:
    """(header text, chunk encoder) for ``fmt``; raises ValueError on another."""
    if fmt == "jsonl":

        def jsonl(rows: list[HistoryRow]) -> str:
            return "".join(
                json.dumps(row_json(r, tz), ensure_ascii=False) + "\n" for r in rows
            )

        return "", jsonl
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush() -> str:
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        def csv_rows(rows: list[HistoryRow]) -> str:
            writer.writerows(_csv_cells(r, tz) for r in rows)
            return flush()

        writer.writerow(COLUMNS)
        return flush(), csv_rows
    raise ValueError(f"unknown export format {fmt!r}: use csv or jsonl")


def lines(
    calls: QuerySet[Call],
    sort: Sort,
    fmt: str,
    tz: tzinfo,
    progress: Callable[[int], None] | None = None,
) -> Iterator[str]:
    """The file's text, a chunk at a time; ``progress`` hears each chunk's size."""
    header, encode = encoder(fmt, tz)
    if header:
        yield header
    for rows in chunks(calls, sort, CHUNK):
        if progress is not None:
            progress(len(rows))
        yield encode(rows)


def blines(
    calls: QuerySet[Call],
    sort: Sort,
    fmt: str,
    tz: tzinfo,
    done: Callable[[int, bool], Any],
) -> Iterator[bytes]:
    """``alines`` for a WSGI server (and the test client): the same bytes from a
    plain iterator, so nothing has to gather an async stream into memory."""
    count, complete = 0, False

    def counted(rows: int) -> None:
        nonlocal count
        count += rows

    try:
        for text in lines(calls, sort, fmt, tz, counted):
            yield text.encode()
        complete = True
    finally:
        done(count, complete)


async def alines(
    calls: QuerySet[Call],
    sort: Sort,
    fmt: str,
    tz: tzinfo,
    done: Callable[[int, bool], Any],
) -> AsyncIterator[bytes]:
    """``lines`` for an ASGI response, as bytes; each chunk's queries run in the
    sync thread. ``done(rows, complete)`` runs (sync) at the end, also when the
    client goes away mid-file (``complete`` False)."""
    header, encode = encoder(fmt, tz)
    fetch = sync_to_async(next_chunk)
    count, complete = 0, False
    try:
        if header:
            yield header.encode()
        after = ""
        while True:
            rows, after = await fetch(calls, sort, after, CHUNK)
            count += len(rows)
            if rows:
                yield encode(rows).encode()
            if not after:
                break
        complete = True
    finally:
        await sync_to_async(done)(count, complete)
