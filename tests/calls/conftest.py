"""Fixtures of the calls tests: a scripted Graph, eager tasks, and the webhook
trusting a test token issuer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connections
from django.test import Client

import pytest

from callbot.calls import ingestthreads
from callbot.celery import app as celery_app
from callbot.graph.factory import reset_notification_authenticator
from tests.support.fake_graph import FakeGraph
from tests.support.jwt import JwksServer, TestTokenIssuer


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    """A scripted Graph in place of the process-wide client, where the worker side
    looks it up (``perform`` and ``upkeep``)."""
    fake = FakeGraph()
    monkeypatch.setattr("callbot.calls.perform.get_graph_client", lambda: fake)
    monkeypatch.setattr("callbot.calls.upkeep.get_graph_client", lambda: fake)
    return fake


@pytest.fixture
def eager_tasks(settings: Any) -> Iterator[None]:
    """Tasks run in the test's process, as on the embedded default, even when
    REDIS_URL is set. The Celery app reads settings once, so its own configuration
    is switched too."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def webhook(
    settings: Any, jwks_server: JwksServer, token_issuer: TestTokenIssuer
) -> Iterator[Client]:
    """A client posting to the webhook, with Callbot trusting ``token_issuer``."""
    settings.GRAPH_NOTIFICATION_OPENID_URL = jwks_server.openid_url
    settings.GRAPH_CLIENT_ID = token_issuer.audience
    settings.GRAPH_CA_BUNDLE = ""
    reset_notification_authenticator()
    yield Client()
    reset_notification_authenticator()


@pytest.fixture
def ingest_thread(settings: Any) -> Iterator[None]:
    """The webhook on an ingest thread, as servers run it (under ASGI a POST then
    takes ``WebhookHandler._post``); its connection closed after."""
    settings.WEBHOOK_INGEST_THREADS = 1
    yield
    threads = ingestthreads.executor()
    assert threads is not None
    threads.submit(connections.close_all).result()
