"""``manage.py beat_health``: exit 0 while Celery beat is sending its tasks.

Beat's database scheduler writes each task's ``last_run_at`` when it syncs (every
few minutes); with tasks due every second, a newest ``last_run_at`` older than
``--within`` seconds means beat stopped sending. The compose file's health check
for the beat service.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from django.utils import timezone

from django_celery_beat.models import PeriodicTask  # type: ignore[import-untyped]


class Command(BaseCommand):
    help = "Exit 1 unless beat sent a task within --within seconds."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--within", type=int, default=300)

    def handle(self, *args: Any, **options: Any) -> None:
        newest = PeriodicTask.objects.filter(enabled=True).aggregate(
            newest=Max("last_run_at")
        )["newest"]
        if newest is None:
            raise CommandError("beat has not sent any task yet")
        age = timezone.now() - newest
        if age > timedelta(seconds=options["within"]):
            raise CommandError(f"beat last sent a task {age.total_seconds():.0f} s ago")
        self.stdout.write(f"beat sent a task {age.total_seconds():.0f} s ago")
