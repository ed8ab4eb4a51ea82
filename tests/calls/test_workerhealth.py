"""A dead worker shows: in /healthz's detail (never as a 503), on the Settings page,
in the metrics and as the ``worker_down`` alert, from a stale heartbeat or from an
action no worker has taken; tasks run in-process report fine."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

import pytest
from django_celery_beat.models import (  # type: ignore[import-untyped]
    IntervalSchedule,
    PeriodicTask,
)

from callbot.calls import tasks, workerhealth
from callbot.calls.alertmodels import Alert, AlertKind, AlertSettings
from callbot.calls.models import Action, WorkerHeartbeat
from callbot.calls.states import ActionStatus
from tests.factories import ActionFactory

pytestmark = pytest.mark.django_db

# 90 s, or a little more on a slow run.
STALE = re.compile(r"no worker heartbeat for 9\d s")


@pytest.fixture
def broker(settings: Any, channel_layer: Any) -> None:
    """Tasks go through the broker to a separate worker (none runs here)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.WORKER_CHECK_SECONDS = 0


@pytest.fixture
def in_process(settings: Any, channel_layer: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WORKER_CHECK_SECONDS = 0


def admin_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def seen(worker: str, seconds_ago: float) -> None:
    workerhealth.heartbeat(worker, timezone.now() - timedelta(seconds=seconds_ago))


def queued(seconds_ago: float, **fields: Any) -> Action:
    action = ActionFactory(status=ActionStatus.QUEUED, **fields)
    Action.objects.filter(pk=action.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds_ago)
    )
    return action


def open_worker_alerts() -> list[Alert]:
    return list(Alert.objects.filter(kind=AlertKind.WORKER_DOWN, cleared_at=None))


def test_tasks_run_in_process_report_the_worker_fine(
    alice: Any, in_process: None
) -> None:
    response = admin_client(alice).get("/healthz")
    assert response.status_code == 200
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is True
    assert worker["mode"] == "in-process"
    assert worker["problem"] == ""
    assert open_worker_alerts() == []
    page = admin_client(alice).get("/settings/").content.decode()
    assert 'data-worker-ok="true"' in page
    assert "In-process: tasks run in the web process" in page


def test_a_worker_that_stops_heartbeating_fails_the_detail_and_raises_the_alert(
    alice: Any, client: Client, broker: None
) -> None:
    seen("celery@w1", 5)
    response = admin_client(alice).get("/healthz")
    worker = response.json()["checks"]["worker"]
    assert worker["ok"] is True
    assert worker["mode"] == "broker"
    assert worker["last_worker"] == "celery@w1"
    assert open_worker_alerts() == []

    seen("celery@w1", 90)  # threshold 60 s
    response = admin_client(alice).get("/healthz")
    # The web tier is fine: a load balancer must keep it.
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["worker"]["ok"] is False
    assert STALE.search(body["checks"]["worker"]["problem"])
    [alert] = open_worker_alerts()
    assert alert.call_id is None
    assert STALE.search(alert.message)
    # Anyone's probe sees only the bare status, and raises no second alert.
    assert client.get("/healthz").json() == {"status": "ok"}
    assert Alert.objects.get(pk=alert.pk).count == 1
    page = admin_client(alice).get("/settings/").content.decode()
    assert 'data-worker-ok="false"' in page
    assert "No worker is performing tasks: no worker heartbeat for 9" in page

    seen("celery@w1", 1)  # back: the next probe (or beat's sweep) clears it
    tasks.evaluate_alerts()
    assert open_worker_alerts() == []
    assert Alert.objects.get(pk=alert.pk).cleared_by == "resolved"


def test_no_heartbeat_ever_fails_the_check(broker: None) -> None:
    health = workerhealth.check()
    assert health.ok is False
    assert health.heartbeat_age_seconds is None
    assert health.beat_sent_seconds is None
    assert health.problem == (
        "no worker has sent a heartbeat yet (beat has never recorded sending one: "
        "is beat running?)"
    )


def beat_sent(seconds_ago: float) -> None:
    """Beat's database scheduler's record of sending the heartbeat task."""
    every, _ = IntervalSchedule.objects.get_or_create(
        every=30, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name="worker-heartbeat",
        defaults={
            "task": workerhealth.HEARTBEAT_TASK,
            "interval": every,
            "last_run_at": timezone.now() - timedelta(seconds=seconds_ago),
        },
    )


def test_a_stale_heartbeat_while_beat_sends_blames_the_worker(broker: None) -> None:
    seen("celery@w1", 90)
    beat_sent(100)  # beat records every few minutes: this is beat working

    health = workerhealth.check()

    assert health.ok is False
    assert health.beat_sent_seconds is not None
    assert health.beat_sent_seconds >= 100
    assert STALE.search(health.problem)
    assert "beat last recorded sending one 10" in health.problem
    assert "most likely no worker takes them from the queue" in health.problem


def test_a_stale_heartbeat_beat_stopped_sending_blames_beat(broker: None) -> None:
    seen("celery@w1", 400)
    beat_sent(400)  # past the threshold (60 s) and beat's own record (180 s)

    health = workerhealth.check()

    assert health.ok is False
    assert "no worker heartbeat for 4" in health.problem
    assert "beat last recorded sending one 4" in health.problem
    assert "beat looks stopped" in health.problem


def test_an_action_no_worker_took_raises_the_alert_whatever_the_heartbeat(
    in_process: None,
) -> None:
    claimed = queued(600, attempts=1)  # a worker took it: a retry waits
    assert workerhealth.check().ok is True
    waiting = queued(75)
    queued(10)
    health = workerhealth.note()
    assert health.ok is False
    assert health.oldest_queued_action == waiting.pk != claimed.pk
    assert re.fullmatch(
        rf"action {waiting.pk} has waited 7\d s and no worker has taken it",
        health.problem,
    )
    [alert] = open_worker_alerts()
    assert f"action {waiting.pk} has waited 7" in alert.message
    Action.objects.filter(pk=waiting.pk).update(status=ActionStatus.SENT, attempts=1)
    assert workerhealth.note().ok is True
    assert open_worker_alerts() == []


def test_the_threshold_and_the_switch_come_from_the_alert_settings(
    broker: None,
) -> None:
    AlertSettings.objects.update_or_create(
        pk=1, defaults={"worker_seconds": 120, "worker_enabled": False}
    )
    seen("celery@w1", 90)
    assert workerhealth.check().ok is True
    seen("celery@w1", 130)
    assert workerhealth.note().ok is False
    assert open_worker_alerts() == []  # switched off


def test_the_heartbeat_task_stamps_its_worker_and_forgets_old_ones(
    in_process: None,
) -> None:
    seen("celery@gone", 2 * 24 * 3600)
    tasks.worker_heartbeat.apply()
    [row] = WorkerHeartbeat.objects.all()  # the worker's hostname
    assert row.worker != "celery@gone"
    assert workerhealth.check().heartbeat_age_seconds is not None


def test_metrics_give_the_heartbeat_age_and_the_oldest_untaken_action(
    settings: Any, broker: None
) -> None:
    settings.EMBEDDED_DEFAULT = True
    settings.METRICS_TOKEN = ""
    seen("celery@w1", 30)
    queued(42)
    body = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    ages = {
        line.split()[0]: float(line.split()[1])
        for line in body.splitlines()
        if line.startswith(("callbot_worker_", "callbot_oldest_"))
    }
    assert 30 <= ages["callbot_worker_heartbeat_age_seconds"] < 40
    assert 42 <= ages["callbot_oldest_queued_action_seconds"] < 52
