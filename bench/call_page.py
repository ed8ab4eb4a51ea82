"""An ended meeting's page: the cost of the roster as it was and the timeline.

On a fresh embedded-default database under a temp dir (or the database of
DATABASE_URL): the bot joins a meeting, ``--people`` join in one roster, a supervisor
mutes each of them (one action each, one roster), the call ends. Then prints the
ingest time of the join and mute batches, and for an auditor: the call page (the
roster as it was + the first timeline page), the newest page, two keyset pages of
100, and the JSON Lines export, each with its query count.

    .venv/bin/python bench/call_page.py [--people 1000]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def timed(label: str, run: Callable[[], Any], repeat: int = 1) -> Any:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    best, result, queries = float("inf"), None, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as seen:
            start = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - start)
        queries = len(seen.captured_queries)
    print(f"{label}: {best * 1000:.0f} ms (best of {repeat}), {queries} queries")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("CALLBOT_VAR_DIR", tempfile.mkdtemp(prefix="callpage-"))
    os.environ.setdefault("SECRET_KEY", "bench-call-page-" + uuid.uuid4().hex)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from callbot.calls.ingest import apply_notifications, end_call_locally
    from callbot.calls.models import Action, Call, Participant, ParticipantChange
    from callbot.graph.notifications import parse_notification_batch
    from dashboard.permissions import Role
    from dashboard.roles import upsert_user
    from dashboard.timeline_reads import timeline_page

    call_command("migrate", verbosity=0)
    fixtures = ROOT / "tests" / "fixtures" / "graph"

    def batch(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((fixtures / name).read_text())
        return data

    def ingest(body: dict[str, Any], message_id: str) -> None:
        apply_notifications(
            parse_notification_batch(json.dumps(body)), message_id=message_id
        )

    ingest(batch("meeting_join_established.json"), "join")
    roster = batch("roster_two_join.json")
    entries = roster["value"][0]["resourceData"]
    model = copy.deepcopy(entries[-1])
    for n in range(args.people):
        entry = copy.deepcopy(model)
        entry["id"] = str(uuid.uuid4())
        entry["info"]["identity"]["user"].update(
            displayName=f"Guest {n}", id=str(uuid.uuid4())
        )
        entries.append(entry)
    timed(f"ingest: {len(entries)} join", lambda: ingest(roster, "roster-1"))
    bob = upsert_user("bench-bob", Role.SUPERVISOR, password=uuid.uuid4().hex)[0]
    carol = upsert_user("bench-carol", Role.AUDITOR, password=uuid.uuid4().hex)[0]
    call = Call.objects.get(graph_key__isnull=False)
    now = timezone.now()
    Action.objects.bulk_create(
        Action(
            call=call,
            participant=p,
            kind="mute_participant",
            requested_by=bob,
            status="completed",
            completed_at=now,
            target=p.display_name,
        )
        for p in Participant.objects.filter(call=call, is_bot=False)
    )
    for entry in entries:
        entry["isMuted"] = True
    timed(f"ingest: {len(entries)} muted", lambda: ingest(roster, "roster-2"))
    end_call_locally(call.pk, "bench over")
    print(f"participant changes kept: {ParticipantChange.objects.count()}")

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(carol)

    def page(**query: str) -> int:
        response = client.get(f"/calls/{call.pk}/", query)
        if response.status_code != 200:
            raise SystemExit(f"the call page answered {response.status_code}")
        return len(response.content)

    size = timed("call page (roster as it was + first 100)", page, repeat=3)
    print(f"  {size // 1024} KiB of HTML")
    timed("call page, newest 100", lambda: page(latest="1"), repeat=3)

    def two_pages() -> None:
        first = timeline_page(call, size=100)
        timeline_page(call, after=first.newer, size=100)

    timed("two keyset pages of 100 (reads only)", two_pages, repeat=3)

    def export() -> int:
        response = client.get(f"/calls/{call.pk}/export.jsonl")
        return sum(1 for _ in b"".join(response.streaming_content).splitlines())

    lines = timed("export.jsonl", export)
    print(f"  {lines} lines")


if __name__ == "__main__":
    main()
