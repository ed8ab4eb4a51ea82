"""The API's actors, one per role, each with a token: Ada (Admin), Bob
(Supervisor), Carol (Auditor), Dave (no role); and a client per actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import caches
from django.test import Client

import pytest

from callbot.api.tokens import create_token
from callbot.calls import enqueue
from dashboard import ratelimit
from dashboard.permissions import Role
from dashboard.roles import upsert_user

ROLES = {"ada": Role.ADMIN, "bob": Role.SUPERVISOR, "carol": Role.AUDITOR}


@pytest.fixture(autouse=True)
def _fresh_limits(settings: Any) -> Iterator[None]:
    """Empty rate-limit buckets for each test (they live in process memory)."""
    caches[settings.API_THROTTLE_CACHE].clear()
    ratelimit.forget_users()
    yield
    caches[settings.API_THROTTLE_CACHE].clear()


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Tasks handed to the queue (Graph is not under test here)."""
    seen: list[tuple[str, tuple[Any, ...]]] = []

    def send(name: str, *args: Any) -> bool:
        seen.append((name, args))
        return True

    monkeypatch.setattr(enqueue, "send", send)
    return seen


def make_actor(name: str) -> Any:
    role = ROLES.get(name)
    if role is None:
        return User.objects.create_user(name, password=f"{name}-pw-12345")
    return upsert_user(name, role, password=f"{name}-pw-12345")[0]


def token_client(user: Any) -> Client:
    _, key = create_token(user, name="tests")
    return Client(HTTP_AUTHORIZATION=f"Token {key}")


@pytest.fixture
def actor_client(db: Any) -> Any:
    """``actor_client("bob")``: a client with a token of that actor;
    ``"anonymous"`` sends no credentials, ``"bad_token"`` a made-up key."""

    def make(name: str) -> Client:
        if name == "anonymous":
            return Client()
        if name == "bad_token":
            return Client(HTTP_AUTHORIZATION="Token cbt_not-a-real-key")
        return token_client(make_actor(name))

    return make
