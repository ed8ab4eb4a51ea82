"""``manage.py export_history --format csv --output f.csv [filters]``: the call
history as a file, with the history page's filters and a progress bar.

Writes a chunk at a time (constant memory whatever the number of calls) and
appends one ``export.history`` entry to the audit trail, naming the filters and
the rows written; ``--actor`` names the user it is written for (default: the bot's
own name, as for any command run by an operator on the server).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    OutputWrapper,
)
from django.utils import timezone

from callbot.calls import audit
from dashboard import history_export
from dashboard.history import PERIODS, HistoryForm, form_problems, viewer_zone
from dashboard.history_query import HistoryFilterError, count_matches, matching_calls

# Option name -> form field; each option takes the value the page's URL would.
OPTIONS = {
    "q": "q",
    "period": "period",
    "date_from": "date_from",
    "date_to": "date_to",
    "kind": "kind",
    "direction": "direction",
    "outcome": "outcome",
    "min_duration": "min_duration",
    "max_duration": "max_duration",
    "action": "action",
    "recording": "recording",
    "ivr": "ivr",
    "sort": "sort",
    "tz": "tz",
}


class _Progress:
    """A one-line progress bar on stderr: rows, share of the total, rate."""

    def __init__(self, stream: OutputWrapper, total: int, exact: bool) -> None:
        self.stream, self.total, self.exact = stream, total, exact
        self.done, self.started = 0, time.monotonic()

    def __call__(self, rows: int) -> None:
        self.done += rows
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        if self.exact and self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            line = f"[{bar:<30}] {self.done:,}/{self.total:,} {share:4.0%}"
        else:
            line = f"{self.done:,} rows"
        self.stream.write(f"\r{line}  {rate:,.0f} rows/s", ending="")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("")


class Command(BaseCommand):
    help = "Export the call history (the page's filters) as CSV or JSON Lines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=sorted(history_export.FORMATS), required=True)  # fmt: skip
        parser.add_argument(
            "--output", required=True, help="file to write; - for stdout"
        )
        parser.add_argument("--q", help="search: name, AAD object id, phone, subject, call id")  # fmt: skip
        parser.add_argument("--period", choices=[p for p, _ in PERIODS if p])
        parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD")
        parser.add_argument("--kind")
        parser.add_argument("--direction")
        parser.add_argument("--outcome")
        parser.add_argument("--min-duration", dest="min_duration", help="seconds")
        parser.add_argument("--max-duration", dest="max_duration", help="seconds")
        parser.add_argument("--actor", help="who acted: a username")
        parser.add_argument("--action", help="an action kind, e.g. mute_participant")
        parser.add_argument("--recording", choices=["yes", "no"])
        parser.add_argument("--ivr", help="an IVR step (sales) or option (menu:1)")
        parser.add_argument("--sort", default="newest")
        parser.add_argument("--tz", help="time zone of the times written, e.g. Europe/Berlin")  # fmt: skip
        parser.add_argument("--as", dest="as_user", help="username the audit entry names")  # fmt: skip
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        data = {
            field: options[name]
            for name, field in OPTIONS.items()
            if options.get(name) not in (None, "")
        }
        users = get_user_model().objects
        if options["actor"]:
            actor = users.filter(username=options["actor"]).first()
            if actor is None:
                raise CommandError(f"No user {options['actor']!r} (--actor).")
            data["actor"] = actor.get_username()
        as_user = None
        if options["as_user"]:
            as_user = users.filter(username=options["as_user"]).first()
            if as_user is None:
                raise CommandError(f"No user {options['as_user']!r} (--as).")
        form = HistoryForm(data)
        if not form.is_valid():
            raise CommandError(f"Bad filters: {form_problems(form)}")
        tz = viewer_zone(form)
        try:
            filters = form.filters(tz, timezone.now().astimezone(tz).date())
        except HistoryFilterError as exc:
            raise CommandError(str(exc)) from None
        calls = matching_calls(filters)
        fmt, sort = options["format"], form.chosen_sort()
        progress = None
        if not options["no_progress"]:
            total, more = count_matches(calls, limit=10**9)
            progress = _Progress(self.stderr, total, not more)
        texts = history_export.lines(calls, sort, fmt, tz, self._counter(progress))
        self.rows = 0
        self._write(options["output"], texts)
        written = self.rows
        if progress is not None:
            progress.finish()
        audit.record(
            as_user,
            "export.history",
            fmt,
            outcome="ok",
            detail={
                "filters": filters.as_json(),
                "sort": sort.value,
                "format": fmt,
                "rows": written,
                "output": options["output"],
            },
            actor_name=None if as_user else "manage.py export_history",
        )
        self.stderr.write(f"{written:,} calls written to {options['output']}")

    def _counter(self, progress: _Progress | None) -> Any:
        def count(n: int) -> None:
            self.rows += n
            if progress is not None:
                progress(n)

        return count

    def _write(self, output: str, texts: Iterator[str]) -> None:
        if output == "-":
            for text in texts:
                self.stdout.write(text, ending="")
            return
        try:
            with Path(output).open("w", encoding="utf-8", newline="") as stream:
                for text in texts:
                    stream.write(text)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc}") from None
