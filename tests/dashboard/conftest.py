"""Dashboard actors by role: Alice (admin, from tests/conftest.py), Bob the
supervisor and Carol the auditor, each in the group the roles migration made."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

from django.apps import apps
from django.db import connections

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.layers import channel_layers

from callbot.calls import enqueue
from callbot.calls.models import Call
from dashboard import incoming, presence, ratelimit
from dashboard.permissions import Role
from dashboard.roles import upsert_user
from tests.dashboard.sockets import ingest

PASSWORDS = {
    "ada": "ada-pw-12345",
    "bob": "bob-pw-12345",
    "carol": "carol-pw-12345",
    "dave": "dave-pw-12345",
}


def ensure_roles() -> None:
    """Recreate the role groups: a transactional test's flush removes the rows the
    data migration made."""
    migration = importlib.import_module("dashboard.migrations.0001_roles")
    migration.create_roles(apps, None)


@pytest.fixture
def bob(db: Any) -> Any:
    """Bob, a supervisor."""
    ensure_roles()
    return upsert_user("bob", Role.SUPERVISOR, password=PASSWORDS["bob"])[0]


@pytest.fixture
def carol(db: Any) -> Any:
    """Carol, an auditor."""
    ensure_roles()
    return upsert_user("carol", Role.AUDITOR, password=PASSWORDS["carol"])[0]


@pytest.fixture
def dave(django_user_model: Any) -> Any:
    """Dave has an account and no role."""
    return django_user_model.objects.create_user("dave", password=PASSWORDS["dave"])


@pytest.fixture
def ada(db: Any) -> Any:
    """Ada, an admin by role (Alice in tests/conftest.py is a superuser)."""
    ensure_roles()
    return upsert_user("ada", Role.ADMIN, password=PASSWORDS["ada"])[0]


@pytest_asyncio.fixture
async def live() -> AsyncIterator[None]:
    """For socket tests: a fresh in-memory layer and empty per-user rate limits;
    afterwards the consumers' database thread closes its connection, so PostgreSQL
    can drop the test database at the end."""
    channel_layers.backends.clear()
    presence.forget()
    await database_sync_to_async(ratelimit.forget_users)()
    yield
    channel_layers.backends.clear()
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Actions handed to the task queue, or (a ringing call's decision, with
    in-process tasks) to be performed after commit by the thread that asked for
    them: the Graph side is not under test here."""
    seen: list[int] = []

    def send(name: str, *args: Any) -> bool:
        if name == enqueue.PERFORM_ACTION:
            seen.append(args[0])
        return True

    monkeypatch.setattr(enqueue, "send", send)
    monkeypatch.setattr(
        incoming, "perform_kept", lambda action, **_: seen.append(action.pk)
    )
    return seen


@pytest.fixture
def meeting_call(transactional_db: Any) -> Call:
    """A meeting call the bot has joined, with Ana and Lee present (version 2)."""
    ingest("meeting_join_established.json", "1")
    ingest("roster_two_join.json", "2")
    return Call.objects.get()
