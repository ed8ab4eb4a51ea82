"""Migration calls 0029 folds the duplicate open call-less alerts that several web
processes could raise before the database refused them."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

import pytest

BEFORE = ("calls", "0028_worker_heartbeat")
AFTER = ("calls", "0029_alert_one_open_without_call")


@pytest.mark.django_db(transaction=True)
def test_duplicate_open_worker_down_alerts_fold_into_the_oldest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    Alert = executor.loader.project_state([BEFORE]).apps.get_model("calls", "Alert")
    now = timezone.now()
    oldest = Alert.objects.create(
        kind="worker_down", message="first", count=2, raised_at=now, last_raised_at=now
    )
    later = now + timedelta(seconds=30)
    duplicate = Alert.objects.create(
        kind="worker_down", message="latest", raised_at=later, last_raised_at=later
    )
    cleared = Alert.objects.create(
        kind="worker_down", raised_at=now, last_raised_at=now, cleared_at=now
    )

    executor = MigrationExecutor(connection)
    executor.migrate([AFTER])

    Alert = executor.loader.project_state([AFTER]).apps.get_model("calls", "Alert")
    kept = Alert.objects.get(pk=oldest.pk)
    assert (kept.count, kept.message, kept.last_raised_at) == (3, "latest", later)
    assert kept.cleared_at is None
    folded = Alert.objects.get(pk=duplicate.pk)
    assert (folded.cleared_at, folded.cleared_by) == (later, "duplicate")
    assert Alert.objects.get(pk=cleared.pk).cleared_by == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("before", "after"), [(30, 8), (12, 12)])
def test_a_ringing_threshold_at_the_old_default_moves_below_the_answer_window(
    before: int, after: int
) -> None:
    old = ("calls", "0030_audit_by_bot_index")
    new = ("calls", "0031_alert_ringing_within_answer_window")
    executor = MigrationExecutor(connection)
    executor.migrate([old])
    rows = executor.loader.project_state([old]).apps.get_model("calls", "AlertSettings")
    rows.objects.create(pk=1, ringing_seconds=before)

    executor = MigrationExecutor(connection)
    executor.migrate([new])

    rows = executor.loader.project_state([new]).apps.get_model("calls", "AlertSettings")
    assert rows.objects.get(pk=1).ringing_seconds == after
