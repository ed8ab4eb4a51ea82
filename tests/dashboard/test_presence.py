"""Presence stores: watchers per call, each user once; a watcher whose process
died expires; acts on the same participant by two people within the window are
a clash. Memory (the embedded default) and Redis (several web processes)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from dashboard import presence
from dashboard.presence import (
    ACT_CONFLICT_SECONDS,
    MemoryPresence,
    PresenceStore,
    RedisPresence,
    conflicts,
)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture(
    params=["memory", pytest.param("redis", marks=pytest.mark.needs_redis)]
)
async def store(request: Any) -> AsyncIterator[PresenceStore]:
    if request.param == "memory":
        yield MemoryPresence()
        return
    # A prefix of its own: runs in parallel never see each other's keys.
    redis_store = RedisPresence(
        os.environ["REDIS_URL"], prefix=f"test:presence:{uuid.uuid4().hex}"
    )
    yield redis_store
    keys = await redis_store.redis.keys(f"{redis_store.prefix}:*")
    if keys:
        await redis_store.redis.delete(*keys)
    await redis_store.redis.aclose()


async def test_watchers_join_and_leave_each_user_once(store: PresenceStore) -> None:
    assert await store.join(7, "chan-a", "bob") == ["bob"]
    assert await store.join(7, "chan-b", "ada") == ["ada", "bob"]
    # Bob in a second tab is still one Bob; a refresh changes nothing.
    assert await store.join(7, "chan-c", "bob") == ["ada", "bob"]
    assert await store.join(7, "chan-a", "bob") == ["ada", "bob"]
    assert await store.watchers(8) == []

    assert await store.leave(7, "chan-a") == ["ada", "bob"]
    assert await store.leave(7, "chan-c") == ["ada"]
    assert await store.leave(7, "chan-unknown") == ["ada"]


async def test_an_act_on_the_same_person_by_someone_else_soon_after_is_a_clash(
    store: PresenceStore,
) -> None:
    first = {
        "user": "bob",
        "kind": "mute_participant",
        "participant": "p1",
        "at": 100.0,
    }
    assert await store.record_act(7, first) == []
    # Bob again, someone else on another person, everyone on a call-wide act: none.
    assert await store.record_act(7, {**first, "at": 101.0}) == []
    assert (
        await store.record_act(7, {**first, "user": "ada", "participant": "p2"}) == []
    )
    assert await store.record_act(7, {**first, "user": "ada", "participant": ""}) == []

    clash = await store.record_act(7, {**first, "user": "ada", "at": 103.0})
    assert [(a["user"], a["at"]) for a in clash] == [("bob", 101.0), ("bob", 100.0)]
    # The same acts on another call are no clash.
    assert await store.record_act(8, {**first, "user": "ada"}) == []


async def test_acts_further_apart_than_the_window_are_no_clash() -> None:
    act = {"user": "ada", "participant": "p1", "at": 100.0 + ACT_CONFLICT_SECONDS + 1}
    assert conflicts(act, [{"user": "bob", "participant": "p1", "at": 100.0}]) == []


@pytest.mark.needs_redis
async def test_a_watcher_not_refreshed_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    store = RedisPresence(
        os.environ["REDIS_URL"], prefix=f"test:presence:{uuid.uuid4().hex}"
    )
    try:
        await store.join(7, "chan-dead", "dave")
        monkeypatch.setattr(presence, "PRESENCE_TTL_SECONDS", 600.0)
        await store.join(7, "chan-live", "bob")
        # Dave's process died: his entry is not refreshed and lapses.
        now = presence.time.time()
        monkeypatch.setattr(presence.time, "time", lambda: now + 120)
        assert await store.watchers(7) == ["bob"]
    finally:
        keys = await store.redis.keys(f"{store.prefix}:*")
        if keys:
            await store.redis.delete(*keys)
        await store.redis.aclose()


class _StoreAwayAtFirst(MemoryPresence):
    """A presence store that refuses the first join (Redis restarting)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def join(self, call_id: int, channel: str, user: str) -> list[str]:
        if not self.refused:
            self.refused += 1
            raise ConnectionError("presence store away")
        return await super().join(call_id, channel, user)


async def test_a_join_that_failed_is_published_by_the_next_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page keeps its call when the store is away at its join; the refresher
    then joins it and tells the other watchers (it crashed on every refresh:
    nothing had been published, so it had no record of what was)."""
    import asyncio

    from dashboard.awareness import AwarenessMixin

    store = _StoreAwayAtFirst()
    monkeypatch.setattr(presence, "presence_store", lambda: store)
    monkeypatch.setattr(presence, "PRESENCE_REFRESH_SECONDS", 0.01)
    sent: list[dict[str, Any]] = []

    class Layer:
        async def group_send(self, group: str, message: dict[str, Any]) -> None:
            sent.append(message)

    class User:
        def get_username(self) -> str:
            return "bob"

    watcher = AwarenessMixin()
    watcher.user = User()  # type: ignore[assignment]
    watcher.channel_layer = Layer()
    watcher.channel_name = "chan-bob"
    watcher.watching_calls = {7}

    await watcher.presence_join(7)
    assert sent == []
    assert store.refused == 1
    for _ in range(100):
        if sent:
            break
        await asyncio.sleep(0.01)
    await watcher.presence_leave_all()
    assert sent[0]["watchers"] == ["bob"]
    assert sent[0]["call_id"] == 7
