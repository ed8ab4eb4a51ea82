"""Call control with a real Celery worker on Redis, including one killed mid-task.

The worker is a separate process reading the test database (PostgreSQL in CI) and
talking to the emulator; Callbot's webhook runs on the live server in this process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from django.db import connection

import pytest

from callbot.calls.models import Action, Participant
from callbot.calls.services import request_action
from callbot.celery import app as celery_app
from tests.e2e.conftest import Callbot
from tests.e2e.test_call_control import ANA, LEE, joined_meeting
from tests.support.emulator import wait_until
from tests.support.worker import Worker, start_worker, worker_environment

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis, pytest.mark.needs_postgres]


@pytest.fixture
def queue(settings: Any) -> Iterator[str]:
    """A queue of this test's own, with tasks sent to it rather than run in-process."""
    name = f"callbot-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    before = (celery_app.conf.task_default_queue, celery_app.conf.task_always_eager)
    celery_app.conf.task_default_queue = name
    celery_app.conf.task_always_eager = False
    yield name
    celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = before


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
