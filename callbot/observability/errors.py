"""Optional error reporting with Sentry's SDK: on only when ``SENTRY_DSN`` is set."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float) -> None:
    """Report unhandled errors of requests and tasks (and, with a rate above 0,
    traces). Users are sent as ids only, no cookies, headers or bodies."""
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
    )
