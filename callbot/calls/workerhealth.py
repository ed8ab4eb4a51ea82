"""Is a worker performing tasks? Heartbeats, the oldest untaken action, one alert.

Two readings, either of which shows a dead worker:

1. **Heartbeat.** Beat sends ``callbot.calls.worker_heartbeat`` every
   ``WORKER_HEARTBEAT_SECONDS`` through the same queue as the actions; the worker
   that runs it stamps its row (``WorkerHeartbeat``). No stamp for the alert
   settings' ``worker_seconds`` means no worker consumes the queue, or beat
   stopped sending. Which of the two is read from beat's own record of sending
   the heartbeat task (``django_celery_beat``'s ``last_run_at``, written every
   few minutes) and said in the problem.
2. **Oldest untaken action.** An action still ``queued`` that no worker has
   claimed (``attempts`` 0) for ``worker_seconds`` is the symptom itself, read from
   the database whatever becomes of the heartbeat.

``check()`` reads both (two indexed queries); ``note()`` also raises or clears the
``worker_down`` alert. The rule cannot wait for beat's alert sweep, which a worker
runs: the web processes apply it when ``/healthz`` is probed (at most every
``WORKER_CHECK_SECONDS`` each), and the sweep applies it too. Tasks run in-process
(the embedded default, tests) have no heartbeat to wait for: only the second
reading applies there. Writes only ``WorkerHeartbeat`` rows (and alerts through
``alerts``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from django_celery_beat.models import PeriodicTask  # type: ignore[import-untyped]

from callbot.calls import alerts
from callbot.calls.alertmodels import Alert, AlertKind
from callbot.calls.models import Action, WorkerHeartbeat
from callbot.calls.states import ActionStatus

logger = logging.getLogger(__name__)

IN_PROCESS = "in-process"
BROKER = "broker"
# A worker not seen for this long is forgotten.
FORGET_AFTER = timedelta(days=1)
HEARTBEAT_TASK = "callbot.calls.worker_heartbeat"
# Beat's database scheduler writes a task's ``last_run_at`` when it syncs, at most
# this far apart (Celery's ``sync_every``): a record older than this plus the
# threshold means beat itself stopped sending.
BEAT_RECORDS_EVERY = 180


@dataclass(frozen=True)
class WorkerHealth:
    """What ``check()`` found; ``problem`` says it in words ("" when ``ok``)."""

    ok: bool
    mode: str
    threshold_seconds: int
    # Seconds since the newest heartbeat (None: none yet) and who sent it.
    heartbeat_age_seconds: float | None
    last_worker: str
    # Seconds since beat recorded sending the heartbeat task (None: never).
    beat_sent_seconds: float | None
    # Seconds the oldest action no worker has taken has been queued (None: none).
    oldest_queued_seconds: float | None
    oldest_queued_action: int | None
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def in_process() -> bool:
    """Tasks run in this process (the embedded default, tests): no broker between."""
    return bool(settings.CELERY_TASK_ALWAYS_EAGER)


def heartbeat(worker: str, now: datetime | None = None) -> None:
    """Stamp ``worker``'s row (beat's heartbeat task, run by that worker)."""
    now = now or timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker=worker[:255] or IN_PROCESS, defaults={"seen_at": now}
    )
    WorkerHeartbeat.objects.filter(seen_at__lt=now - FORGET_AFTER).delete()


def check(now: datetime | None = None) -> WorkerHealth:
    """Both readings against the alert settings' ``worker_seconds``."""
    now = now or timezone.now()
    threshold = alerts.alert_settings().worker_seconds
    mode = IN_PROCESS if in_process() else BROKER
    newest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    beat_age = (now - newest.seen_at).total_seconds() if newest else None
    oldest = (
        Action.objects.filter(status=ActionStatus.QUEUED, attempts=0)
        .order_by("created_at")
        .values_list("pk", "created_at")
        .first()
    )
    oldest_id = oldest[0] if oldest else None
    queued_age = (now - oldest[1]).total_seconds() if oldest else None
    problems = []
    sent_age = None
    if mode == BROKER and (beat_age is None or beat_age > threshold):
        sent_age = _beat_sent_age(now)
        missing = (
            "no worker has sent a heartbeat yet"
            if beat_age is None
            else f"no worker heartbeat for {beat_age:.0f} s"
        )
        problems.append(f"{missing} ({_whose_fault(sent_age, threshold)})")
    if queued_age is not None and queued_age > threshold:
        problems.append(
            f"action {oldest_id} has waited {queued_age:.0f} s and no worker has "
            "taken it"
        )
    return WorkerHealth(
        ok=not problems,
        mode=mode,
        threshold_seconds=threshold,
        heartbeat_age_seconds=None if beat_age is None else round(beat_age, 1),
        last_worker=newest.worker if newest else "",
        beat_sent_seconds=None if sent_age is None else round(sent_age, 1),
        oldest_queued_seconds=None if queued_age is None else round(queued_age, 1),
        oldest_queued_action=oldest_id,
        problem="; ".join(problems),
    )


def _beat_sent_age(now: datetime) -> float | None:
    sent = PeriodicTask.objects.filter(task=HEARTBEAT_TASK).aggregate(
        newest=Max("last_run_at")
    )["newest"]
    return None if sent is None else (now - sent).total_seconds()


def _whose_fault(sent_age: float | None, threshold: int) -> str:
    """Beat stopped, or the worker: by when beat last recorded sending."""
    if sent_age is None:
        return "beat has never recorded sending one: is beat running?"
    if sent_age > threshold + BEAT_RECORDS_EVERY:
        return (
            f"beat last recorded sending one {sent_age:.0f} s ago: beat looks stopped"
        )
    # Within beat's recording interval: beat may have stopped since (a worker
    # started with -B takes beat with it), so the worker is only the likelier.
    return (
        f"beat last recorded sending one {sent_age:.0f} s ago and records only "
        "every few minutes: most likely no worker takes them from the queue"
    )


def note(now: datetime | None = None) -> WorkerHealth:
    """``check()``, then raise ``worker_down`` if it fails and none is open, or
    clear the open one if it passes (one more query)."""
    health = check(now)
    open_alert = Alert.objects.filter(
        kind=AlertKind.WORKER_DOWN, cleared_at__isnull=True
    ).exists()
    if not health.ok and not open_alert:
        alerts.raise_alert(
            AlertKind.WORKER_DOWN,
            None,
            f"No worker is performing tasks: {health.problem} (threshold "
            f"{health.threshold_seconds} s). Actions wait queued until one runs.",
            now=now,
        )
    elif health.ok and open_alert:
        alerts.clear_alerts(AlertKind.WORKER_DOWN, now=now)
    return health


_lock = threading.Lock()
_last_noted = -float("inf")


def note_when_due() -> None:
    """``note()`` at most every ``WORKER_CHECK_SECONDS`` in this process (``/healthz``
    runs it on every probe); never raises."""
    global _last_noted
    with _lock:
        due = time.monotonic() - _last_noted >= settings.WORKER_CHECK_SECONDS
        if due:
            _last_noted = time.monotonic()
    if not due:
        return
    try:
        note()
    except Exception:
        logger.exception("checking the workers failed")
