"""beat_health: beat's health check in docker/compose.yml."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.management import CommandError, call_command
from django.utils import timezone

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

pytestmark = pytest.mark.django_db


def test_healthy_only_while_beat_sends_tasks() -> None:
    with pytest.raises(CommandError, match="not sent any task"):
        call_command("beat_health")
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(
        name="sweep", task="callbot.ivr.sweep_timeouts", interval=every
    )
    task.last_run_at = timezone.now() - timedelta(seconds=30)
    task.save()
    out = io.StringIO()
    call_command("beat_health", "--within", "60", stdout=out)
    assert "s ago" in out.getvalue()
    with pytest.raises(CommandError, match="last sent a task"):
        call_command("beat_health", "--within", "10")
