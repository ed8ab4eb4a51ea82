"""Who watches each call page, and what they did there lately.

A ``PresenceStore`` keeps, per call, the sockets watching it (with their user's
name) and the recent acts on it. The consumer joins and leaves it as pages
subscribe and go, refreshes its entries while it stays, and publishes the
watcher list and each act to the call's group. With several web processes the
store must be shared: ``RedisPresence`` (when ``REDIS_URL`` is set) keeps entries
that expire unless refreshed, so a process that dies without saying goodbye
drops out within ``PRESENCE_TTL_SECONDS``. The embedded default has one process
and keeps it all in memory (``MemoryPresence``). Imports nothing of the consumers.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any, Protocol

from django.conf import settings

import redis.asyncio as redis

from callbot.runtime import redisretry

# A watcher not refreshed for this long is gone (its process died).
PRESENCE_TTL_SECONDS = 60.0
# Consumers refresh their entries this often while they watch.
PRESENCE_REFRESH_SECONDS = 20.0
# Two people acting on the same participant within this many seconds are told.
ACT_CONFLICT_SECONDS = 10.0
# Acts remembered per call (enough for the window at any human pace).
ACTS_KEPT = 50


def conflicts(
    act: dict[str, Any], recent: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Recent acts by someone else on the same participant within
    ``ACT_CONFLICT_SECONDS`` of ``act``, newest first."""
    if not act.get("participant"):
        return []
    return [
        other
        for other in recent
        if other.get("participant") == act["participant"]
        and other.get("user") != act["user"]
        and abs(float(act["at"]) - float(other.get("at", 0))) <= ACT_CONFLICT_SECONDS
    ]


class PresenceStore(Protocol):
    async def join(self, call_id: int, channel: str, user: str) -> list[str]:
        """Add a watcher (or refresh it); the call's watchers after."""

    async def leave(self, call_id: int, channel: str) -> list[str]:
        """Remove a watcher; the call's watchers after."""

    async def watchers(self, call_id: int) -> list[str]:
        """The users watching the call, sorted, each once."""

    async def record_act(
        self, call_id: int, act: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Remember an act; the recent acts it ``conflicts`` with."""


class MemoryPresence:
    """One process's watchers and acts (the embedded default)."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}
        self.acts: dict[int, deque[dict[str, Any]]] = {}

    async def join(self, call_id: int, channel: str, user: str) -> list[str]:
        self.calls.setdefault(call_id, {})[channel] = user
        return await self.watchers(call_id)

    async def leave(self, call_id: int, channel: str) -> list[str]:
        watching = self.calls.get(call_id, {})
        watching.pop(channel, None)
        if not watching:
            self.calls.pop(call_id, None)
            self.acts.pop(call_id, None)
        return await self.watchers(call_id)

    async def watchers(self, call_id: int) -> list[str]:
        return sorted(set(self.calls.get(call_id, {}).values()))

    async def record_act(
        self, call_id: int, act: dict[str, Any]
    ) -> list[dict[str, Any]]:
        kept = self.acts.setdefault(call_id, deque(maxlen=ACTS_KEPT))
        found = conflicts(act, list(reversed(kept)))
        kept.append(dict(act))
        return found


class RedisPresence:
    """Watchers in a sorted set per call (score: when the entry expires) and acts
    in a capped list, shared by every web process."""

    def __init__(self, url: str, prefix: str = "callbot:presence") -> None:
        self.redis = redis.from_url(url, **redisretry.async_options())
        self.prefix = prefix

    def _watchers_key(self, call_id: int) -> str:
        return f"{self.prefix}:{call_id}:watchers"

    def _acts_key(self, call_id: int) -> str:
        return f"{self.prefix}:{call_id}:acts"

    async def join(self, call_id: int, channel: str, user: str) -> list[str]:
        key = self._watchers_key(call_id)
        member = json.dumps([channel, user])
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {member: time.time() + PRESENCE_TTL_SECONDS})
            pipe.expire(key, int(PRESENCE_TTL_SECONDS * 2))
            await pipe.execute()
        return await self.watchers(call_id)

    async def leave(self, call_id: int, channel: str) -> list[str]:
        key = self._watchers_key(call_id)
        raws: list[Any] = await self.redis.zrange(key, 0, -1)
        for raw in raws:
            if json.loads(raw)[0] == channel:
                await self.redis.zrem(key, raw)
        return await self.watchers(call_id)

    async def watchers(self, call_id: int) -> list[str]:
        key = self._watchers_key(call_id)
        await self.redis.zremrangebyscore(key, "-inf", time.time())
        raws: list[Any] = await self.redis.zrange(key, 0, -1)
        return sorted({json.loads(raw)[1] for raw in raws})

    async def record_act(
        self, call_id: int, act: dict[str, Any]
    ) -> list[dict[str, Any]]:
        key = self._acts_key(call_id)
        recent = [json.loads(raw) for raw in await self.redis.lrange(key, 0, ACTS_KEPT)]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, json.dumps(act))
            pipe.ltrim(key, 0, ACTS_KEPT - 1)
            pipe.expire(key, int(ACT_CONFLICT_SECONDS * 6))
            await pipe.execute()
        return conflicts(act, recent)


_store: PresenceStore | None = None


def presence_store() -> PresenceStore:
    """The process's store: Redis when ``REDIS_URL`` is set, else memory."""
    global _store
    if _store is None:
        url = getattr(settings, "REDIS_URL", "")
        _store = RedisPresence(url) if url else MemoryPresence()
    return _store


def forget() -> None:
    """Drop the process's store (tests start each from empty)."""
    global _store
    _store = None
