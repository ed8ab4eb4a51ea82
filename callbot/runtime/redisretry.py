"""How every Redis client of Callbot's treats a connection Redis closed.

redis-py keeps idle connections in a pool and hands one out without asking the
server first. After Redis restarts, every pooled connection is dead, and the
first command on each failed with ``ConnectionError: Connection closed by
server``: a websocket consumer's first blocking pop or presence write crashed it
(the page dropped and backed off for seconds), and the worker's first live
publishes were lost. A client made from a URL or around a pool retries nothing
(redis-py's default ``Retry`` of 0 tries applies there, whatever ``Redis()``
alone would do).

So every client is given a ``Retry``: a ``ConnectionError`` disconnects the
connection (redis-py does that before each retry) and sends the command once
more, at once, on a fresh one. Timeouts are not retried: a Redis that stops
answering is noticed after one socket timeout, not two. A Redis that is down
fails the second try too, as before.

Imports nothing of Callbot's.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

# Tries after the first: one is enough to replace a connection Redis closed.
RETRIES_ON_CLOSED_CONNECTION = 1


def sync_options() -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis.from_url`` or a ``ConnectionPool``
    (Django's ``RedisCache`` passes its ``OPTIONS`` to the pool)."""
    return {
        "retry": Retry(
            NoBackoff(),
            RETRIES_ON_CLOSED_CONNECTION,
            supported_errors=(RedisConnectionError,),
        )
    }


def async_options() -> dict[str, Any]:
    """The same for ``redis.asyncio`` clients and pools (channels_redis passes
    a host's entries to its pool)."""
    return {
        "retry": AsyncRetry(
            NoBackoff(),
            RETRIES_ON_CLOSED_CONNECTION,
            supported_errors=(RedisConnectionError,),
        )
    }
