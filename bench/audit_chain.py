"""Audit trail benchmark: appending to the hash chain, verifying it, exporting it.

Runs in-process on the embedded default (a fresh SQLite under a temp dir), or on
PostgreSQL when DATABASE_URL is set (then it migrates that database and appends
to its trail: use a scratch database). Prints entries/s for appends (one
transaction each, from one thread and from several), for ``verify_audit`` on the
database, for a JSON Lines export and for verifying the file offline, and the
export's peak Python memory (tracemalloc), which stays flat as the trail grows.

    .venv/bin/python bench/audit_chain.py [--entries 20000] [--threads 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    var = tempfile.mkdtemp(prefix="callbot-audit-bench-")
    os.environ.setdefault("CALLBOT_VAR_DIR", var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections, transaction

    from callbot.calls import audit, auditexport, auditseal, auditverify

    if not settings.AUDIT_SIGNING_KEY and not settings.AUDIT_SIGNING_KEY_GENERATE:
        settings.AUDIT_SIGNING_KEY = auditseal.new_private_pem()
    call_command("migrate", verbosity=0)
    vendor = connections["default"].vendor

    def append(n: int, tag: str) -> None:
        for i in range(n):
            with transaction.atomic():
                audit.record(
                    None,
                    "mute_participant",
                    f"{tag} {i}",
                    outcome="requested",
                    detail={"action_id": i, "params": {"participant_id": tag}},
                    client_ip="10.0.0.1",
                )

    half = args.entries // 2
    started = time.perf_counter()
    append(half, "one")
    one = half / (time.perf_counter() - started)

    each = (args.entries - half) // args.threads

    def worker(k: int) -> None:
        try:
            append(each, f"thread{k}")
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(args.threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    many = each * args.threads / (time.perf_counter() - started)
    total = half + each * args.threads

    started = time.perf_counter()
    report = auditverify.verify_database()
    verify = report.entries / (time.perf_counter() - started)
    if not report.ok:
        raise SystemExit(report.summary())

    path = Path(var) / "export.jsonl"

    def export_to(target: Path) -> None:
        with target.open("w") as out:
            for block in auditexport.jsonl_lines():
                out.write(block)

    started = time.perf_counter()
    export_to(path)
    export = total / (time.perf_counter() - started)
    # Memory on a second run: tracemalloc slows allocation several times over.
    tracemalloc.start()
    export_to(Path(var) / "export-traced.jsonl")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    public = auditseal.signing_key().public_key()
    started = time.perf_counter()
    with path.open() as lines:
        offline = auditverify.verify_file(lines, public)
    offline_rate = offline.entries / (time.perf_counter() - started)
    if not offline.ok:
        raise SystemExit(offline.summary())

    print(f"database: {vendor}; {total} entries")
    print(f"append, 1 thread:        {one:8.0f} entries/s")
    print(f"append, {args.threads} threads:       {many:8.0f} entries/s")
    print(f"verify_audit (database): {verify:8.0f} entries/s")
    print(f"export JSON Lines:       {export:8.0f} entries/s, peak {peak / 1e6:.1f} MB")
    print(f"verify export offline:   {offline_rate:8.0f} entries/s")
    print(f"export size: {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
