"""Callbot's own Prometheus metrics, all named ``callbot_*`` (the Graph edge's are
in ``callbot/graph/metrics.py``; the scrape-time readings in ``collectors.py``).

Each process keeps its own registry (prometheus-client's default): the web
processes serve theirs at ``/metrics``, a separate Celery worker at
``METRICS_WORKER_PORT`` (``exposition.py``), and Prometheus adds them up by job.
See docs/deploy.md ("Metrics").
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NOTIFICATIONS_RECEIVED = Counter(
    "callbot_notifications_received_total",
    "Graph notifications in batches the webhook accepted (202).",
)
NOTIFICATIONS_REFUSED = Counter(
    "callbot_notifications_refused_total",
    "Webhook requests refused, by the error code answered (unauthorized, "
    "bad_request, payload_too_large, signing_keys_unavailable, "
    "database_unavailable).",
    ["reason"],
)
INGEST_SECONDS = Histogram(
    "callbot_ingest_duration_seconds",
    "Time to apply one accepted notification batch (one transaction).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
LIVE_SOCKETS = Gauge(
    "callbot_live_sockets",
    "Dashboard websockets open and signed in, in this process.",
)
DELTAS_PUSHED = Counter(
    "callbot_deltas_pushed_total",
    "Live deltas sent to the channel layer, by group (a call's page or the board).",
    ["group"],
)
ACTIONS = Counter(
    "callbot_actions_total",
    "Actions that reached a final status, by kind and outcome.",
    ["kind", "outcome"],
)


def notification_refused(reason: str) -> None:
    NOTIFICATIONS_REFUSED.labels(reason).inc()


def batch_ingested(notifications: int, seconds: float) -> None:
    NOTIFICATIONS_RECEIVED.inc(notifications)
    INGEST_SECONDS.observe(seconds)


def deltas_pushed(call_deltas: int, board_deltas: int) -> None:
    DELTAS_PUSHED.labels("call").inc(call_deltas)
    DELTAS_PUSHED.labels("board").inc(board_deltas)


def action_finished(kind: str, outcome: str) -> None:
    ACTIONS.labels(kind, outcome).inc()
