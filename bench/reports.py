"""Reports benchmark: the auditors' report over a large call table.

Generates --calls calls spread over the last --days days (business hours weighted;
answered, abandoned, rejected, redirected, transferred, IVR paths, meeting calls
with participants, some failed actions), with their actions, IVR sessions and
participants, inserted in bulk. Then times ``dashboard.reports.build_report`` (every
report, as the page runs it) for today, 7, 30 and 92 days, --repeat times each, and
prints the median and the slowest, each report's share, and PostgreSQL's plan for
the range filter (which must use ``call_history_start_idx``).

On the embedded default the data goes to a SQLite file in a temp dir (or in
--var-dir, kept, e.g. for demo screenshots); with DATABASE_URL set, to a database of
the bench's own on that server, dropped afterwards.

    .venv/bin/python bench/reports.py [--calls 200000] [--days 365] [--repeat 5]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x SECRET_KEY=bench-only \\
      .venv/bin/python bench/reports.py --calls 200000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.emulator_to_callbot import own_database

BATCH = 5000
# Calls per hour of the day (local), relative: an office's day.
HOUR_WEIGHTS = [
    1,
    1,
    1,
    1,
    1,
    2,
    4,
    9,
    16,
    20,
    19,
    17,
    12,
    16,
    19,
    18,
    14,
    9,
    5,
    3,
    2,
    2,
    1,
    1,
]
FAILURES = [  # (result_code, result_subcode, error_code, kind), weighted by repetition
    (403, None, "graph_403", "play_prompt"),
    (403, None, "graph_403", "transfer"),
    (404, None, "graph_404", "mute_participant"),
    (404, None, "graph_404", "hang_up"),
    (500, 8510, "graph_5xx", "transfer"),
    (None, None, "transport", "play_prompt"),
    (None, None, "invalid", "invite"),
    (409, None, "graph_409", "answer"),
    (400, 8507, "", "record_response"),
]


@contextmanager
def stored_times(*models: Any) -> Iterator[None]:
    """Let bulk inserts keep the ``created_at`` they are given (``auto_now_add``
    would stamp every generated row with the present)."""
    fields = [model._meta.get_field("created_at") for model in models]
    for field in fields:
        field.auto_now_add = False
    try:
        yield
    finally:
        for field in fields:
            field.auto_now_add = True


def generate(
    calls: int, days: int, seed: int = 7, *, live: bool = True
) -> dict[str, int]:
    """Insert ``calls`` calls of the last ``days`` days and their rows; returns counts.
    ``live`` leaves some of the last minutes' calls running (on the board)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from callbot.calls.models import Action, Call, Meeting, Participant
    from callbot.ivr.models import IvrSession

    rng = random.Random(seed)
    now = timezone.now()
    tz = timezone.get_current_timezone()
    today = timezone.localtime(now, tz).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    supervisor = get_user_model().objects.filter(is_superuser=True).first()
    subjects = [
        "Incident bridge", "Weekly ops review", "Customer escalations", "Release sync",
        "Sales standup", "Support handover", "Board prep", "Design review",
        "Vendor call", "Security briefing", "All hands", "Training: new agents",
    ]  # fmt: skip
    meetings = Meeting.objects.bulk_create(
        Meeting(
            subject=f"{subjects[i % len(subjects)]}{'' if i < len(subjects) else f' #{i}'}",
            thread_id=f"19:meeting_{uuid.uuid4().hex}@thread.v2",
            organizer_id=str(uuid.uuid4()),
        )
        for i in range(40)
    )
    meeting_weights = [1 / (rank + 1) for rank in range(len(meetings))]
    counts = {"calls": 0, "actions": 0, "participants": 0, "ivr_sessions": 0}

    def moment() -> datetime:
        day = rng.randrange(days)
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        at = (
            today
            - timedelta(days=day)
            + timedelta(hours=hour, seconds=rng.randrange(3600))
        )
        return min(at, now - timedelta(seconds=rng.randrange(60, 4 * 3600)))

    def talk() -> timedelta:
        return timedelta(seconds=min(4 * 3600, int(rng.lognormvariate(5.0, 1.1)) + 5))

    with stored_times(Call, Action):
        done = 0
        while done < calls:
            size = min(BATCH, calls - done)
            rows: list[Call] = []
            plans: list[dict[str, Any]] = []
            for _ in range(size):
                created = moment()
                roll = rng.random()
                plan: dict[str, Any] = {"actions": [], "ivr": False, "people": 0}
                call = Call(
                    graph_id=str(uuid.uuid4()),
                    graph_key=uuid.uuid4().hex,
                    created_at=created,
                    state="terminated",
                    direction="incoming",
                    source_display=f"Caller {rng.randrange(10_000):04d}",
                )
                running = (
                    live
                    and now - created < timedelta(minutes=20)
                    and rng.random() < 0.5
                )
                if roll < 0.15:  # a meeting the bot joined
                    call.kind = "meeting"
                    call.direction = "outgoing"
                    call.meeting = rng.choices(meetings, meeting_weights)[0]
                    call.established_at = created + timedelta(seconds=4)
                    call.terminated_at = call.established_at + talk() * 4
                    plan["actions"].append(("join_meeting", "completed", None))
                    plan["people"] = rng.randrange(2, 9)
                elif roll < 0.40:  # placed by the bot
                    call.direction = "outgoing"
                    plan["actions"].append(("place_call", "completed", None))
                    if rng.random() < 0.8:
                        call.established_at = created + timedelta(
                            seconds=rng.randrange(3, 20)
                        )
                        call.terminated_at = call.established_at + talk()
                    else:
                        call.terminated_at = created + timedelta(seconds=30)
                else:  # incoming, decided by a policy
                    decide = rng.random()
                    if decide < 0.08:
                        plan["actions"].append(("reject", "completed", None))
                        call.terminated_at = created + timedelta(seconds=2)
                    elif decide < 0.13:
                        plan["actions"].append(("redirect", "completed", None))
                        call.terminated_at = created + timedelta(seconds=3)
                    elif decide < 0.25:  # the caller gave up
                        call.terminated_at = created + timedelta(
                            seconds=rng.randrange(3, 15)
                        )
                    else:
                        plan["actions"].append(("answer", "completed", None))
                        call.established_at = created + timedelta(seconds=2)
                        call.terminated_at = call.established_at + talk()
                        if rng.random() < 0.45:
                            plan["ivr"] = True
                            plan["actions"].append(
                                ("subscribe_to_tone", "completed", None)
                            )
                            if rng.random() < 0.85:
                                plan["actions"].append(
                                    ("play_prompt", "completed", None)
                                )
                                if rng.random() < 0.7:
                                    call.last_tone_sequence = rng.randrange(1, 6)
                                    call.last_tone = str(rng.randrange(10))
                                    if rng.random() < 0.55:
                                        plan["actions"].append(
                                            ("transfer", "completed", None)
                                        )
                                    else:
                                        plan["actions"].append(
                                            ("hang_up", "completed", None)
                                        )
                        elif rng.random() < 0.05:
                            plan["actions"].append(
                                ("transfer", "completed", supervisor)
                            )
                if rng.random() < 0.03:
                    code, subcode, error, kind = rng.choice(FAILURES)
                    plan["actions"].append((kind, "failed", (code, subcode, error)))
                if running and call.established_at is not None:
                    call.state, call.terminated_at = "established", None
                # bulk_create skips save(): the history's summary columns
                # (outcome, duration) would stay "live" and 0 otherwise.
                call.refresh_summary()
                rows.append(call)
                plans.append(plan)
            Call.objects.bulk_create(rows)
            actions: list[Action] = []
            sessions: list[IvrSession] = []
            people: list[Participant] = []
            for call, plan in zip(rows, plans, strict=True):
                for offset, (kind, status, extra) in enumerate(plan["actions"]):
                    at = call.created_at + timedelta(seconds=offset)
                    action = Action(
                        call=call,
                        kind=kind,
                        status=status,
                        created_at=at,
                        completed_at=at + timedelta(seconds=1),
                    )
                    if isinstance(extra, tuple):
                        action.result_code, action.result_subcode, action.error_code = (
                            extra
                        )
                    elif extra is not None:
                        action.requested_by = extra
                    actions.append(action)
                if plan["ivr"]:
                    sessions.append(
                        IvrSession(call=call, flow_start="menu", status="completed")
                    )
                for n in range(plan["people"]):
                    people.append(
                        Participant(
                            call=call,
                            graph_id=str(uuid.uuid4()),
                            graph_key=uuid.uuid4().hex,
                            display_name=f"Person {n}",
                            is_bot=n == 0,
                            joined_at=call.created_at,
                        )
                    )
            Action.objects.bulk_create(actions, batch_size=BATCH)
            IvrSession.objects.bulk_create(sessions, batch_size=BATCH)
            Participant.objects.bulk_create(people, batch_size=BATCH)
            counts["calls"] += len(rows)
            counts["actions"] += len(actions)
            counts["ivr_sessions"] += len(sessions)
            counts["participants"] += len(people)
            done += size
    return counts


def measure(repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from callbot.calls.models import Call
    from dashboard import reports

    user = get_user_model().objects.get(username="bench-auditor")
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    # The baseline, under the same load and cache: counting the range's calls.
    print(
        f"{'range':>10} {'calls in range':>15} {'median ms':>10} {'max ms':>8}"
        f" {'count(*) ms':>12}  slowest reports (median ms)"
    )
    for preset, days in (("today", 1), ("7d", 7), ("30d", 30), ("92d", 92)):
        period = reports.Period(today - timedelta(days=days - 1), today, tz)
        in_range = Call.objects.filter(
            created_at__gte=period.start, created_at__lt=period.end
        ).count()
        baseline: list[float] = []
        totals: list[float] = []
        each: dict[str, list[float]] = {name: [] for name in reports.REPORT_NAMES}
        for _ in range(repeat):
            started = time.perf_counter()
            Call.objects.filter(
                created_at__gte=period.start, created_at__lt=period.end
            ).count()
            baseline.append(time.perf_counter() - started)
            started = time.perf_counter()
            reports.build_report(user, period)
            totals.append(time.perf_counter() - started)
            for name in reports.REPORT_NAMES:
                one = time.perf_counter()
                reports.build_report(user, period, only=name)
                each[name].append(time.perf_counter() - one)
        slowest = sorted(each.items(), key=lambda kv: -statistics.median(kv[1]))[:3]
        parts = ", ".join(
            f"{name} {1000 * statistics.median(t):.0f}" for name, t in slowest
        )
        print(
            f"{preset:>10} {in_range:>15,} {1000 * statistics.median(totals):>10.0f}"
            f" {1000 * max(totals):>8.0f} {1000 * statistics.median(baseline):>12.1f}"
            f"  {parts}"
        )
    if connection.vendor == "postgresql":
        period = reports.Period(today - timedelta(days=6), today, tz)
        query = reports._in_range(Call.objects.all(), period).values("pk")
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        print("plan of the 7-day range filter:", plan[0].strip(), "|", plan[-1].strip())


def kept_database(base_url: str, name: str) -> str:
    """The URL of database ``name`` on ``base_url``'s server, created if missing."""
    import psycopg
    from psycopg import sql

    server = urlsplit(base_url)._replace(path="/postgres").geturl()
    with psycopg.connect(server, autocommit=True) as admin:
        found = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if found is None:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlsplit(base_url)._replace(path=f"/{name}").geturl()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--var-dir", help="keep the SQLite database here (embedded default only)"
    )
    parser.add_argument(
        "--keep-database",
        metavar="NAME",
        help="with DATABASE_URL: use (and keep) this database on that server; "
        "calls are generated only while it has none, so a second run only measures",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    base_url = os.environ.get("DATABASE_URL", "")
    if args.keep_database and not base_url:
        parser.error("--keep-database needs DATABASE_URL")
    with ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        if args.keep_database:
            url = kept_database(base_url, args.keep_database)
        else:
            url = stack.enter_context(own_database())
        if url:
            os.environ["DATABASE_URL"] = url
        else:
            os.environ["CALLBOT_VAR_DIR"] = args.var_dir or scratch
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from callbot.calls.models import Call
        from dashboard.permissions import Role
        from dashboard.roles import upsert_user

        call_command("migrate", verbosity=0)
        upsert_user("bench-auditor", Role.AUDITOR, password=uuid.uuid4().hex)
        if Call.objects.exists():
            print(
                f"{connection.vendor}: measuring the {Call.objects.count():,} calls kept"
            )
        else:
            started = time.perf_counter()
            counts = generate(args.calls, args.days)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(
                f"{connection.vendor}: generated {counts} over {args.days} days"
                f" in {time.perf_counter() - started:.1f} s"
            )
        measure(args.repeat)
        connection.close()


if __name__ == "__main__":
    main()
