"""Token buckets for the live socket: per socket in memory, per user across servers.

A bucket holds up to ``burst`` tokens and gains ``rate`` tokens a second; each
request takes one, and a request that finds none is refused with the time until
the next one. A supervisor clicking fast stays inside the burst; a script sending
as fast as it can drains it in a moment and then gets ``rate`` a second.

The per-user bucket must hold whichever daphne instance a user's sockets reach, so
with ``REDIS_URL`` set it lives in Redis (one Lua script: read, refill, take, in one
step, on Redis's clock). Without Redis there is one server process, and a bucket
in its memory is the whole truth. Reads and writes nothing in the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings

import redis

from callbot.runtime import redisretry

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class TokenBucket:
    """One bucket in this process's memory; not thread-safe (callers serialise).
    Slotted: every live socket holds three."""

    __slots__ = ("at", "burst", "clock", "rate", "tokens")

    def __init__(
        self, *, rate: float, burst: float, clock: Clock = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.at = clock()

    def take(self) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    @property
    def full(self) -> bool:
        return self.tokens + (self.clock() - self.at) * self.rate >= self.burst


def action_rate() -> tuple[float, float]:
    """(tokens a second, burst) for people's actions, from the settings."""
    return settings.LIVE_ACTION_RATE / 60.0, float(settings.LIVE_ACTION_BURST)


def socket_action_bucket() -> TokenBucket:
    """A fresh per-socket bucket for ``action`` messages."""
    rate, burst = action_rate()
    return TokenBucket(rate=rate, burst=burst)


# --- per user ---------------------------------------------------------------------

# KEYS[1]: the bucket; ARGV: rate (tokens/s), burst. Returns {taken, wait} as
# strings (Redis turns Lua numbers into integers). TIME is Redis's clock, so servers
# whose clocks disagree still share one bucket fairly.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {tostring(wait), tostring(tokens)}
"""

_KEY = "callbot:live:actions:user:{}"

_local: dict[int, TokenBucket] = {}
_local_lock = threading.Lock()
# Full buckets say nothing; drop them once this many users have one.
_LOCAL_PRUNE_AT = 1000


@cache
def _script() -> Any:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=1,
        socket_connect_timeout=1,
        **redisretry.sync_options(),
    )
    return client.register_script(_TAKE)


def take_user_action(user_id: int) -> float:
    """Take one of this user's action tokens: 0.0, or the seconds to wait.

    With Redis unreachable the user's limit is not enforced (the per-socket bucket
    still is) and a warning is logged: a broken limiter must not stop supervisors.
    """
    rate, burst = action_rate()
    if settings.REDIS_URL:
        try:
            wait, _ = _script()(keys=[_KEY.format(user_id)], args=[rate, burst])
            return float(wait)
        except redis.RedisError as exc:
            logger.warning("per-user action limit unavailable: %s", exc)
            return 0.0
    with _local_lock:
        bucket = _local.get(user_id)
        if bucket is None:
            if len(_local) >= _LOCAL_PRUNE_AT:
                for key in [k for k, b in _local.items() if b.full]:
                    del _local[key]
            bucket = _local[user_id] = TokenBucket(rate=rate, burst=burst)
        return bucket.take()


def forget_users() -> None:
    """Empty every per-user bucket, here and in Redis (tests, settings changes)."""
    with _local_lock:
        _local.clear()
    if settings.REDIS_URL:
        client = _script().registered_client
        for key in client.scan_iter(match=_KEY.format("*"), count=500):
            client.delete(key)
