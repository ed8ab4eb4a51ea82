"""Where a notification's time goes, hop by hop: ``--hops`` of the latency benches.

``start()`` names a file in ``CALLBOT_HOP_LOG`` before the bench starts its
processes, which then append a line per hop (``callbot/observability/hops.py``):
the webhook view on its ingest thread, the batch stored, read by the applier,
the publish starting and done (the applier's commit is just before it), each
consumer having the board delta and having sent it, the applier's after-commit
work done. The bench adds its own, per call: ``t0`` (the ring, or the POST),
``socket`` (its websocket client has the delta) and ``dom`` (Chromium's row).

``report()`` prints, for the iterations that reached the DOM, each hop's time
from ``t0`` and the segment from the hop before it, p50 / p99 ms. Each hop is
the first of its kind for that call between ``t0`` and the DOM, except ``last
consumer sent`` (the last of the board's sockets to be sent the delta).
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.stack import quantiles

ENV = "CALLBOT_HOP_LOG"

HOPS = [
    ("webhook", "webhook view (ingest thread)"),
    ("stored", "batch stored, applier kicked"),
    ("read", "read by the applier"),
    ("publish", "applied, committed: publish starts"),
    ("published", "group sends done"),
    ("consumer", "first consumer has it"),
    ("sent", "first consumer sent it"),
    ("last_sent", "last consumer sent it"),
    ("socket", "bench's websocket client has it"),
    ("dom", "Chromium's DOM changed"),
]


def start() -> Path:
    """A fresh log file, named in the environment the bench's processes inherit."""
    handle, name = tempfile.mkstemp(prefix="callbot-hops-", suffix=".log")
    os.close(handle)
    os.environ[ENV] = name
    return Path(name)


def mark(path: Path | None, hop: str, key: str, at: float) -> None:
    if path is not None:
        with path.open("a") as log:
            log.write(f"{hop} {key} {at:.6f}\n")


def report(path: Path) -> None:
    marks: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    alias: dict[str, str] = {}
    for line in path.read_text().splitlines():
        hop, key, at = line.split()
        if hop == "alias":
            row_id, graph_id = key.split("=", 1)
            alias[row_id] = graph_id
            continue
        marks[key][hop].append(float(at))
    for row_id, graph_id in alias.items():
        for hop, times in marks.pop(row_id, {}).items():
            marks[graph_id][hop].extend(times)
    rows: list[dict[str, float]] = []
    for times in marks.values():
        if not times.get("t0") or not times.get("dom"):
            continue
        t0, dom = times["t0"][-1], times["dom"][-1]
        row = {"dom": (dom - t0) * 1000}
        for hop, _ in HOPS:
            source = "sent" if hop == "last_sent" else hop
            inside = sorted(t for t in times.get(source, []) if t0 <= t <= dom)
            if hop in ("dom",) or not inside:
                continue
            at = inside[-1] if hop == "last_sent" else inside[0]
            row[hop] = (at - t0) * 1000
        rows.append(row)
    print(
        f"  hop by hop ({len(rows)} iterations; ms from t0, then from the hop before)"
    )
    print(f"  {'':38}{'p50':>8}{'p99':>8}{'seg p50':>9}{'seg p99':>9}")
    before: str | None = None
    for hop, label in HOPS:
        values = [r[hop] for r in rows if hop in r]
        if not values:
            continue
        p50, p99, _ = quantiles(values)
        segment = [r[hop] - r[before] for r in rows if hop in r and before in r]
        s50, s99, _ = quantiles(segment) if segment else (p50, p99, 0.0)
        print(f"  {label:38}{p50:8.1f}{p99:8.1f}{s50:9.1f}{s99:9.1f}")
        before = hop
