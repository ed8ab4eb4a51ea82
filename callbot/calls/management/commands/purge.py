"""``manage.py purge --before DATE``: drop call content older than DATE.

Ended calls (with participants, events, actions and recording files), stray
events and quarantined notifications go; so do audit entries older than DATE
(``--audit-before`` gives them another date, ``--keep-audit`` keeps them), but
only after a signed checkpoint seals them, so the chain still verifies. The
purge is itself an audit entry. ``--dry-run`` counts and deletes nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from callbot.calls import auditseal, retention


def _moment(value: str) -> datetime:
    """A date (midnight, current time zone) or an ISO date-time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD[THH:MM]): {value!r}") from None
    if len(value) <= 10:
        parsed = datetime.combine(parsed.date(), time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    if parsed > timezone.now():
        raise CommandError(f"{value} is in the future: nothing that old exists yet")
    return parsed


class Command(BaseCommand):
    help = "Delete call content (and sealed audit entries) older than a date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--before", type=_moment, required=True)
        audit = parser.add_mutually_exclusive_group()
        audit.add_argument("--audit-before", type=_moment)
        audit.add_argument("--keep-audit", action="store_true")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        audit_before = (
            None
            if options["keep_audit"]
            else options["audit_before"] or options["before"]
        )
        try:
            result = retention.purge(
                options["before"],
                audit_before=audit_before,
                dry_run=options["dry_run"],
            )
        except auditseal.AuditKeyError as exc:
            raise CommandError(str(exc)) from None
        verb = "would delete" if result.dry_run else "deleted"
        self.stdout.write(
            f"{verb} {result.calls} calls, {result.events} events, "
            f"{result.quarantined} quarantined notifications, {result.recordings} "
            f"recordings and {result.audit_entries} audit entries"
        )
        if options["verbosity"] > 1:
            self.stdout.write(json.dumps(asdict(result), indent=2))
