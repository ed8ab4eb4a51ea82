"""The Celery app. Configured from Django settings (``CELERY_*``).

On the embedded default the broker is ``memory://`` and tasks run eagerly in the
calling process; with ``REDIS_URL`` set, a worker (``celery -A callbot worker``)
performs them.

A worker keeps its database connections across tasks (``CELERY_DB_REUSE_MAX``), so
it must notice by itself when one died (PostgreSQL restarted, a failover): around
every task the connections are checked the way Django checks them around every
request, and a task that still meets the database away is retried, not failed.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections

from celery import Celery, signals
from celery.contrib.django.task import DjangoTask
from kombu.transport import redis as redis_transport
from redis.exceptions import ConnectionError as RedisConnectionError

from callbot.observability import logcontext

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")

logger = logging.getLogger(__name__)

# A task retried for a database outage waits 1, 2, 4 ... seconds, at most this long,
# and is given up after DATABASE_RETRIES tries (about eight minutes in all); an
# action given up on stays queued, and ``requeue_stale_actions`` sends it again.
DATABASE_RETRY_MAX_SECONDS = 30
DATABASE_RETRIES = 20


class CallbotTask(DjangoTask[Any, Any]):
    """Every task of the app: retried when the database is unreachable.

    ``OperationalError``/``InterfaceError`` mean the connection or the server is
    gone, not that the task is wrong: the task is sent again with backoff, so an
    action, an IVR step or a keepAlive waits out a restart instead of being lost.
    Tasks without arguments are beat's sweeps; their next tick does the same work,
    so they are not retried. Eager and direct calls raise as before.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            request = self.request
            if request.is_eager or request.called_directly or not (args or kwargs):
                raise
            tries = int(request.retries or 0)
            countdown = min(2.0**tries, DATABASE_RETRY_MAX_SECONDS)
            # Spread the retries of many tasks that failed together.
            countdown *= random.uniform(0.75, 1.25)  # noqa: S311 (not security)
            logger.warning(
                "task %s: database unavailable (%s: %s); retrying in %.1f s",
                self.name,
                type(exc).__name__,
                exc,
                countdown,
                extra={"task_id": request.id},
            )
            raise self.retry(
                exc=exc, countdown=countdown, max_retries=DATABASE_RETRIES
            ) from exc


class _RedisChannel(redis_transport.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            # The connection was collected after the broker went away; kombu
            # would fail with AttributeError, which nothing expects. Say what it is.
            raise RedisConnectionError("the broker connection is closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        return params


class RedisTransport(redis_transport.Transport):
    """kombu's Redis transport, surviving the loss of Redis with messages in hand.

    When Redis goes away, Celery's consumer collects the broken connection (which
    drops the transport's client) and then closes it; a task that was running
    acknowledges its message after that. Both reach a channel that needs the
    client, and kombu raised ``AttributeError`` there, which Celery does not treat
    as a connection error: the worker exited with "Unrecoverable error" and
    performed nothing until restarted. Raising a connection error instead lets
    Celery ignore it and reconnect; the messages it could not give back or
    acknowledge stay in Redis's unacked set and are delivered again after
    ``visibility_timeout`` (``perform`` claims an action once, so a second
    delivery is harmless). tests/faults/test_redis_restart.py holds the case.
    """

    Channel = _RedisChannel


# Named, not passed as a class: Celery imports it when it makes the first task.
app = Celery("callbot", task_cls="callbot.celery:CallbotTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_broken_connections(sender: Any = None, **kwargs: Any) -> None:
    """Before and after each task a worker runs, drop database connections that
    failed or outlived ``CONN_MAX_AGE``, and have the next query check the one it
    gets (``CONN_HEALTH_CHECKS``): Django's request handling does the same.

    Without this, a worker that reuses connections keeps a connection PostgreSQL
    closed (a restart) and fails every later task on it. Eager tasks run inside
    the caller's request or transaction and are left alone.
    """
    request = getattr(sender, "request", None)
    if getattr(request, "is_eager", False):
        return
    close_old_connections()


@signals.task_prerun.connect
def _fresh_log_context(sender: Any = None, **kwargs: Any) -> None:
    # Each task a worker runs starts with no call, user or client-request-id of
    # the task before it; an eager task keeps its caller's.
    if not getattr(getattr(sender, "request", None), "is_eager", False):
        logcontext.clear()


@app.on_after_finalize.connect
def _import_task_modules(sender: Celery, **kwargs: object) -> None:
    # The domain sends tasks by name (``callbot.calls.enqueue``) and imports no task
    # module; import them all when the app is finalized, in every process, so a
    # name is always registered (the worker would otherwise be the only one).
    sender.loader.import_default_modules()


@signals.worker_init.connect
def _serve_worker_metrics(**kwargs: object) -> None:
    # A separate worker has no web views: its own registry (actions, Graph
    # requests) is served on METRICS_WORKER_PORT. Run it with ``--pool threads``
    # (one process); a prefork child's counters would not reach this server.
    from django.conf import settings

    if settings.METRICS_WORKER_PORT:
        # Imported here: it reads models, and this module loads before the apps.
        from callbot.observability.exposition import serve_worker_metrics

        serve_worker_metrics(settings.METRICS_WORKER_PORT)


@signals.worker_process_init.connect
@signals.worker_ready.connect
def _freeze_startup(**kwargs: object) -> None:
    # A worker's start-up objects (Django, this app and its tasks) are kept for
    # its life: out of the collector's way, as in the web process.
    from callbot.runtime.collector import freeze_startup

    freeze_startup()


@signals.worker_ready.connect
def _reconcile_live_calls_at_start(**kwargs: object) -> None:
    # Calls may have ended while no worker listened (a restart, an outage): check
    # every live call with Graph now rather than when it has been silent for long.
    app.tasks["callbot.calls.reconcile_silent_calls"].apply_async(
        kwargs={"silence_seconds": 0}
    )


@signals.worker_ready.connect
def _heartbeat_at_start(**kwargs: object) -> None:
    # A worker that just started shows as alive before beat's next heartbeat.
    app.tasks["callbot.calls.worker_heartbeat"].apply_async()
