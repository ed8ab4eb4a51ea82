"""``manage.py export_audit``: the audit trail as JSON Lines or CSV, streamed to a
file or stdout in constant memory, with a progress bar on stderr.

An unfiltered JSON Lines export is sealed by a fresh checkpoint and verifies
offline: ``manage.py verify_audit --file F --public-key K``. The export is
itself an audit entry (actor ``manage.py``).
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbot.calls import audit, auditexport


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = "Export the audit trail (JSON Lines with hashes and checkpoints, or CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("-o", "--output", type=Path, help="default: stdout")
        parser.add_argument("--actor", default="", help="a user name, or callbot")
        parser.add_argument(
            "--by",
            choices=["people", "bot"],
            default="",
            help="only people's acts, or only the bot's",
        )
        parser.add_argument("--action", default="")
        parser.add_argument("--outcome", default="")
        parser.add_argument("--call", type=int, help="a call's id")
        parser.add_argument("--since", type=_day, help="YYYY-MM-DD, inclusive")
        parser.add_argument("--until", type=_day, help="YYYY-MM-DD, inclusive")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = auditexport.AuditFilter(
            actor=options["actor"],
            by=options["by"],
            action=options["action"],
            outcome=options["outcome"],
            call_id=options["call"],
            since=options["since"],
            until=options["until"],
        )
        audit.record(
            None,
            "export.audit",
            options["format"],
            outcome="exported",
            detail={
                "filters": {
                    k: str(v) for k, v in vars(chosen).items() if v not in ("", None)
                },
                "output": str(options["output"] or "stdout"),
            },
            actor_name="manage.py",
        )
        total = chosen.entries().count()
        show = not options["no_progress"] and options["output"] is not None
        progress = self._bar(total) if show else None
        queryset = chosen.entries() if chosen.active else None
        if options["format"] == "csv":
            blocks = auditexport.csv_lines(queryset, progress=progress)
        else:
            blocks = auditexport.jsonl_lines(
                queryset, filtered=chosen.active, progress=progress
            )
        if options["output"] is None:
            self._write(blocks, sys.stdout)
            return
        with options["output"].open("w", encoding="utf-8", newline="") as out:
            self._write(blocks, out)
        if show:
            self.stderr.write("")
        self.stderr.write(f"{total} entries written to {options['output']}")

    def _write(self, blocks: Any, out: TextIO) -> None:
        for block in blocks:
            out.write(block)

    def _bar(self, total: int) -> Any:
        width = 30

        def progress(done: int) -> None:
            share = min(done / total, 1.0) if total else 1.0
            filled = int(share * width)
            bar = "#" * filled + "-" * (width - filled)
            self.stderr.write(f"\r[{bar}] {done}/{total} {share:4.0%}", ending="")
            self.stderr.flush()

        return progress
