"""Celery inside the web process, for the embedded default (``manage.py serve``).

With nothing configured there is no broker for a separate worker to share: the
``memory://`` broker lives in one process. ``serve`` therefore asks daphne's
process (``CALLBOT_INPROCESS_WORKER=1``) to run a Celery worker, with beat
embedded, in a background thread. The webhook still only records and enqueues;
the worker thread calls Graph, as a real worker would.

Live deltas from the worker's threads reach the consumers on daphne's event loop
through the embedded default's channel layer, which hands them to that loop
(``callbot.runtime.layers``). With ``REDIS_URL`` set none of this runs: workers and
beat are separate processes.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

ENV_FLAG = "CALLBOT_INPROCESS_WORKER"
_started = threading.Event()


def wanted() -> bool:
    return os.environ.get(ENV_FLAG) == "1"


def start_worker() -> None:
    """Start one worker thread (thread pool, beat embedded); idempotent."""
    if _started.is_set():
        return
    _started.set()
    from celery.beat import EmbeddedService
    from celery.worker import WorkController

    from callbot.celery import app

    app.conf.task_always_eager = False
    # Beat in a thread of this process, not the worker's embedded beat: that one
    # forks, and a forked beat would queue into its own copy of the memory broker.
    from django.conf import settings

    # The same scheduler as ``celery beat`` (the database one, edited in the
    # admin); EmbeddedService would default to a schedule file in the cwd.
    beat = EmbeddedService(
        app,
        thread=True,
        scheduler_cls=app.conf.beat_scheduler,
        schedule_filename=str(settings.VAR_DIR / "celerybeat-schedule"),
    )
    beat.start()  # type: ignore[union-attr]  # thread=True gives a _Threaded
    worker = WorkController(
        app=app,
        pool="threads",
        concurrency=4,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname="callbot-inprocess@localhost",
        loglevel="INFO",
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()
    logger.info("in-process Celery worker and beat started")
