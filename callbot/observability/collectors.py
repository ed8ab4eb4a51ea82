"""Readings taken when Prometheus scrapes, not counted as things happen: calls by
state (the database), the Celery queue's depth (the broker), and whether a worker
performs tasks (its heartbeat's age, the oldest untaken action's: the database).

They live in their own registry, served only by the web's ``/metrics``: one web
process is enough to report them, and a scrape of each replica reads the same
shared database and broker. Each reading is one cheap query: live calls use the
``call_live_idx`` partial index, and the queue a passive declare (``LLEN`` on
Redis). A failed reading is logged and left out of that scrape, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count

from celery import current_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from callbot.calls import workerhealth
from callbot.calls.models import Call
from callbot.calls.states import LIVE_STATES

logger = logging.getLogger(__name__)


class CallsByState(Collector):
    """``callbot_calls{state}``: live calls (every state but terminated) now."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "callbot_calls",
            "Calls not yet terminated, by state, read from the database at scrape.",
            labels=["state"],
        )
        try:
            counts = dict(
                Call.objects.filter(state__in=LIVE_STATES)
                .values_list("state")
                .annotate(n=Count("pk"))
                .values_list("state", "n")
            )
        except Exception:
            logger.exception("metrics: cannot count calls by state")
            return
        for state in sorted(LIVE_STATES):
            family.add_metric([str(state)], counts.get(state, 0))
        yield family


class CeleryQueueDepth(Collector):
    """``callbot_celery_queue_depth{queue}``: tasks waiting in the broker."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "callbot_celery_queue_depth",
            "Tasks waiting in the Celery queue, read from the broker at scrape.",
            labels=["queue"],
        )
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        try:
            with current_app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                channel: Any = connection.default_channel
                ok = channel.queue_declare(queue, passive=True)
                depth = ok.message_count
        except Exception as exc:
            # A queue nobody has declared yet is empty, not an error.
            if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower():
                depth = 0
            else:
                logger.warning("metrics: cannot read the queue depth: %s", exc)
                return
        family.add_metric([queue], depth)
        yield family


class WorkerAges(Collector):
    """``callbot_worker_heartbeat_age_seconds`` (left out until a worker has sent
    one) and ``callbot_oldest_queued_action_seconds`` (0 when none waits):
    ``workerhealth.check``'s two readings."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            health = workerhealth.check()
        except Exception:
            logger.exception("metrics: cannot read the workers' health")
            return
        if health.heartbeat_age_seconds is not None:
            yield GaugeMetricFamily(
                "callbot_worker_heartbeat_age_seconds",
                "Seconds since a worker last ran beat's heartbeat task.",
                value=health.heartbeat_age_seconds,
            )
        yield GaugeMetricFamily(
            "callbot_oldest_queued_action_seconds",
            "Seconds the oldest action no worker has taken has been queued.",
            value=health.oldest_queued_seconds or 0,
        )


SCRAPE_REGISTRY = CollectorRegistry(auto_describe=False)
SCRAPE_REGISTRY.register(CallsByState())
SCRAPE_REGISTRY.register(CeleryQueueDepth())
SCRAPE_REGISTRY.register(WorkerAges())
