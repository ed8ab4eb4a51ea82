"""Shared test setup: service markers, the actors, wire fixtures, the live layer.

Actors, named once: Alice is an admin, Bob a supervisor, Carol an auditor.
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.management import call_command

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "graph"

pytest_plugins = ["tests.support.jwt_fixtures"]


def _reachable(url: str, default_port: int) -> tuple[bool, str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return True, ""
    except OSError as exc:
        return False, f"{host}:{port} unreachable ({exc})"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip service tests with a visible reason; in CI an unreachable service fails."""
    for marker, variable, port in (
        ("needs_postgres", "DATABASE_URL", 5432),
        ("needs_redis", "REDIS_URL", 6379),
    ):
        if item.get_closest_marker(marker) is None:
            continue
        url = os.environ.get(variable, "")
        if not url:
            pytest.skip(f"{marker}: set {variable} to run this test")
        ok, why = _reachable(url, port)
        if not ok:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{marker}: {variable} is set but {why}")
            pytest.skip(f"{marker}: {why}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On the embedded default the webhook inbox has a SQLite database of its own
    (``callbot/calls/inboxrouter.py``): every test that uses the database uses
    that one too (created, rolled back or flushed with the main one)."""
    from django.conf import settings

    if "inbox" not in settings.DATABASES:
        return
    for item in items:
        marker = item.get_closest_marker("django_db")
        fixtures = getattr(item, "fixturenames", ())
        if marker is None and not {"db", "transactional_db", "live_server"} & set(
            fixtures
        ):
            continue
        kwargs = dict(marker.kwargs) if marker is not None else {}
        args = marker.args if marker is not None else ()
        databases = kwargs.get("databases")
        if databases == "__all__":
            continue
        kwargs["databases"] = sorted({*(databases or ("default",)), "inbox"})
        item.add_marker(pytest.mark.django_db(*args, **kwargs), append=False)


@pytest.fixture(scope="session", autouse=True)
def _celery_finalized() -> None:
    """Import every task module once, before any live server thread runs, as
    ``callbot.asgi`` does for daphne: the live server's thread and a test's
    thread finalizing Celery together deadlock on the import locks."""
    from callbot.celery import app as celery_app

    celery_app.finalize()


@pytest.fixture(autouse=True)
def _live_payloads_are_json(settings: Any) -> None:
    settings.LIVE_PAYLOAD_JSON_CHECK = True
    # In-process tests post to the webhook inside the test's transaction, so it
    # must run on the test's own connection, not an ingest thread's
    # (tests/calls/test_ingest_threads.py covers those; servers run them).
    settings.WEBHOOK_INGEST_THREADS = 0


@pytest.fixture(autouse=True)
def _webhook_apply_under_test(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests run the webhook's configured mode (``WEBHOOK_APPLY``:
    deferred unless PostgreSQL runs without Redis), or the one
    ``CALLBOT_TEST_WEBHOOK_APPLY`` (``inline``/``deferred``) names. Deferred,
    each batch is stored and the inbox drained at once, on the test's own
    connection, before the answer: every test that posts then exercises the
    deferred path's storing, ordering and applying (only the 202 body differs),
    and reads what was applied right after (an applier process could not see
    rows in the test's transaction), and ``/healthz`` starts no applier. Tests
    of the applier itself put the real wake-up back (tests/calls/test_inbox.py)."""
    mode = os.environ.get("CALLBOT_TEST_WEBHOOK_APPLY") or settings.WEBHOOK_APPLY
    settings.WEBHOOK_APPLY = mode
    if mode != "deferred":
        return
    from callbot.calls import inbox, inboxapplier
    from tests.support import webhook

    monkeypatch.setattr(
        inboxapplier, "kick", lambda: webhook.drains.append(inbox.drain())
    )
    # /healthz starts the applier: no stray child process or thread in tests.
    monkeypatch.setattr(inboxapplier, "start", lambda: None)


@pytest.fixture(autouse=True)
def _no_app_roles_kept() -> Iterator[None]:
    """The app token's roles a test read (the permissions panel, the worker's
    task) stay in the cache; the next test starts without, so every control is
    offered unless the test says otherwise."""
    yield
    # Imported here: this module loads before Django is set up.
    from callbot.calls.app_permissions import forget_roles

    forget_roles()


@pytest.fixture(autouse=True)
def _no_log_context_kept() -> Iterator[None]:
    """Log context fields a test bound (an action's ``client_request_id``...) are
    not on the next test's lines: tests share a thread, in whatever order they
    run."""
    yield
    from callbot.observability import logcontext

    logcontext.clear()


@pytest.fixture(autouse=True)
def _no_common_searches_kept() -> Iterator[None]:
    """A search a test found common is not common in the next test's calls."""
    yield
    from dashboard.history_query import forget_common_searches

    forget_common_searches()


@pytest.fixture(autouse=True)
def _no_roster_rows_kept() -> Iterator[None]:
    """Rows a test's batches left in ``rostercache`` are not the next test's:
    a rolled-back database gives its ids again."""
    yield
    from callbot.calls.rostercache import forget

    forget()


@pytest.fixture(autouse=True)
def _no_roster_bodies_kept() -> Iterator[None]:
    """A large roster body a test's webhook read is not decoded from in the
    next test (``rosterbodies``)."""
    yield
    from callbot.graph import rosterbodies

    rosterbodies.forget()


def load_fixture(name: str) -> dict[str, Any]:
    """A notification batch from tests/fixtures/graph/, as a fresh dict."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.fixture
def graph_fixture() -> Any:
    return load_fixture


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    """Alice, an admin."""
    return django_user_model.objects.create_superuser(
        "alice", "alice@example.com", "alice-pw-1"
    )


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    """Bob, a supervisor: may act on calls."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from callbot.calls.models import Action

    user = django_user_model.objects.create_user("bob", "bob@example.com", "bob-pw-1")
    # A transactional test's flush may have emptied the permission table.
    permission, _ = Permission.objects.get_or_create(
        codename="request_action",
        content_type=ContentType.objects.get_for_model(Action),
        defaults={"name": "Can act on live calls"},
    )
    user.user_permissions.add(permission)
    return user


@pytest.fixture
def carol(django_user_model: Any) -> Any:
    """Carol, an auditor: reads, never acts."""
    return django_user_model.objects.create_user(
        "carol", "carol@example.com", "carol-pw-1"
    )


@pytest.fixture
def demo_ivr(db: Any) -> None:
    """The demo prompts, "operator" flow and call policies, as ``make run`` installs
    them (a test database has none: no migration creates them)."""
    call_command("demo_ivr", stdout=io.StringIO())


@pytest.fixture
def channel_layer(settings: Any) -> Iterator[Any]:
    """A fresh in-memory channel layer, the embedded default's (Redis-backed tests
    configure their own)."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "callbot.runtime.layers.InProcessChannelLayer"}
    }
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no tasks behind on a shared Redis: with REDIS_URL set, tasks queued by
    the run (signal receivers, services) wait in the run's own queue; drop it."""
    queue = os.environ.get("CELERY_QUEUE", "")
    if not (os.environ.get("REDIS_URL") and queue.startswith("callbot-test")):
        return
    try:
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2)
        client.delete(queue, f"_kombu.binding.{queue}")
    except Exception as exc:
        print(f"could not drop the test queue {queue}: {exc}")  # noqa: T201
