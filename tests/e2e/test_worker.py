"""Call control with a real Celery worker on Redis, including one killed mid-task.

The worker is a separate process reading the test database (PostgreSQL in CI) and
talking to the emulator; Callbot's webhook runs on the live server in this process.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

import pytest

from callbot.calls import workerhealth
from callbot.calls.alertmodels import Alert
from callbot.calls.models import Action, Participant, WorkerHeartbeat
from callbot.calls.services import request_action
from callbot.celery import app as celery_app
from tests.e2e.conftest import Callbot
from tests.e2e.test_call_control import ANA, LEE, joined_meeting
from tests.support.emulator import wait_until
from tests.support.worker import Worker, start_worker, worker_environment

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis, pytest.mark.needs_postgres]


@pytest.fixture
def queue(settings: Any) -> Iterator[str]:
    """The test run's own queue (``make test`` sets ``CELERY_QUEUE``), emptied, with
    tasks sent to it rather than run in-process.

    Celery fixes the default queue on first use, so it cannot be switched per test;
    a run that would share the default ``celery`` queue is skipped instead.
    """
    name = celery_app.conf.task_default_queue
    if not name.startswith("callbot-test"):
        pytest.skip("set CELERY_QUEUE=callbot-test-<anything> (make test does)")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(name)
    yield name
    celery_app.conf.task_always_eager = before


@pytest.fixture
def worker_env(callbot: Callbot) -> dict[str, str]:
    return worker_environment(
        callbot.emulator,
        callbot.url,
        connection.settings_dict["NAME"],
        # Short enough for a test: Redis hands a dead worker's task to another
        # after 2 s, and an action's claim lapses after 3 s.
        {
            "CELERY_VISIBILITY_TIMEOUT": "2",
            "CELERY_RESTORE_INTERVAL": "1",
            "ACTION_LEASE_SECONDS": "3",
        },
    )


@pytest.fixture
def workers(queue: str, worker_env: dict[str, str]) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def mutes(callbot: Callbot) -> list[dict[str, Any]]:
    return [
        r
        for r in callbot.emulator.control("GET", "/requests")["value"]
        if r["method"] == "POST" and r["path"].endswith("/mute")
    ]


def test_a_real_worker_performs_a_supervisors_mute(
    callbot: Callbot,
    bob: Any,
    queue: str,
    worker_env: dict[str, str],
    workers: list[Worker],
    settings: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    celery_app.conf.task_always_eager = True
    call = joined_meeting(callbot, [{**ANA, "muted": False}, {**LEE, "muted": False}])
    celery_app.conf.task_always_eager = False
    workers.append(start_worker(worker_env, queue))
    lee = Participant.objects.get(call=call, identity_id=LEE["user"]["id"])

    action = request_action(
        "mute_participant", actor=bob, call=call, participant_id=lee.graph_id
    )

    wait_until(
        lambda: Action.objects.get(pk=action.pk).status == "completed", timeout=20
    )
    wait_until(lambda: Participant.objects.get(pk=lee.pk).is_muted, timeout=10)
    assert len([r for r in mutes(callbot) if r["status"] == 200]) == 1


def test_worker_killed_mid_task_and_the_mute_still_happens_exactly_once(
    callbot: Callbot,
    bob: Any,
    queue: str,
    worker_env: dict[str, str],
    workers: list[Worker],
) -> None:
    celery_app.conf.task_always_eager = True
    call = joined_meeting(callbot, [{**ANA, "muted": False}, {**LEE, "muted": False}])
    celery_app.conf.task_always_eager = False
    ana = Participant.objects.get(call=call, identity_id=ANA["user"]["id"])
    # Graph takes 1.5 s to answer the mute: the worker dies while it waits.
    callbot.emulator.control(
        "POST",
        "/faults",
        {"graph_slow": {"count": 1, "delay_ms": 1500, "match": "/mute"}},
    )
    first = start_worker(worker_env, queue)
    workers.append(first)

    action = request_action(
        "mute_participant", actor=bob, call=call, participant_id=ana.graph_id
    )
    wait_until(lambda: Action.objects.get(pk=action.pk).attempts == 1, timeout=20)
    first.kill()
    assert Action.objects.get(pk=action.pk).status == "queued"

    second = start_worker(worker_env, queue)
    workers.append(second)

    try:
        done = wait_until(
            lambda: Action.objects.filter(pk=action.pk, status="completed").first(),
            timeout=40,
        )
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nfirst worker:\n{first.output()[-3000:]}\n"
            f"second worker:\n{second.output()[-3000:]}"
        ) from None
    assert done.attempts == 2
    wait_until(lambda: Participant.objects.get(pk=ana.pk).is_muted, timeout=10)
    assert len([r for r in mutes(callbot) if r["status"] == 200]) <= 1
    assert callbot.emulator.control("GET", f"/calls/{call.graph_id}")


def test_an_ivr_caller_reaches_the_operator_through_a_real_worker(
    callbot: Callbot, queue: str, worker_env: dict[str, str], workers: list[Worker]
) -> None:
    """The whole bot on the production shape: the webhook only enqueues; the
    worker applies the policy, runs the IVR and transfers to the operator."""
    from tests.e2e.test_ivr import (
        OPERATOR_ID,
        ended,
        listening_at_menu,
        menu_flow,
        ring,
        use_policy,
    )

    worker = start_worker({**worker_env, "IVR_OPERATOR_USER_ID": OPERATOR_ID}, queue)
    workers.append(worker)
    use_policy(action="answer", flow=menu_flow())
    call_id = ring(callbot, {"user": {"displayName": "Ana Lopez"}})

    try:
        listening_at_menu(call_id)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nworker:\n{worker.output()[-3000:]}") from None
    callbot.emulator.control("POST", f"/calls/{call_id}/tones", {"keys": "0"})

    call = ended(call_id)
    transfer = Action.objects.get(call=call, kind="transfer")
    assert transfer.status == "completed"
    assert transfer.parameters["target"]["user_id"] == OPERATOR_ID
    assert (call.result_code, call.result_subcode) == (0, 7015)


def test_a_real_worker_heartbeats_and_once_stopped_shows_as_down(
    callbot: Callbot,
    bob: Any,
    queue: str,
    worker_env: dict[str, str],
    workers: list[Worker],
) -> None:
    celery_app.conf.task_always_eager = True
    call = joined_meeting(callbot, [{**ANA, "muted": False}, {**LEE, "muted": False}])
    celery_app.conf.task_always_eager = False
    worker = start_worker(worker_env, queue)
    workers.append(worker)
    # The worker sends itself a heartbeat as it starts (``worker_ready``).
    wait_until(lambda: WorkerHeartbeat.objects.exists(), timeout=20)
    health = workerhealth.check()
    assert (health.ok, health.mode) == (True, "broker"), health
    assert health.last_worker.startswith("celery@")

    worker.stop()
    lee = Participant.objects.get(call=call, identity_id=LEE["user"]["id"])
    action = request_action(
        "mute_participant", actor=bob, call=call, participant_id=lee.graph_id
    )
    later = timezone.now() + timedelta(seconds=61)
    health = workerhealth.note(now=later)
    assert not health.ok
    assert health.oldest_queued_action == action.pk
    assert "no worker heartbeat for" in health.problem
    assert f"action {action.pk} has waited" in health.problem
    assert Alert.objects.filter(kind="worker_down", cleared_at=None).count() == 1
    assert Action.objects.get(pk=action.pk).status == "queued"
