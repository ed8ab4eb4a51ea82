"""Notification delivery: ordered per call, batched per callback, signed, retried.

The engine hands over notifications as they happen; this module POSTs them to each
call's ``callbackUri`` after the triggering HTTP response, the way the calling platform
does (contract §7.1, §7.2, §8).

Ordering and batching, the part that matters for a webhook's correctness:

1. Every callback URL has one ``Channel``: a FIFO of pending notifications from all the
   calls that report there, and up to ``max_in_flight_per_callback`` POSTs at once.
2. A batch takes pending notifications front to back, at most ``batch_max``, skipping
   calls that already have a POST in flight. A call in a batch is "busy" until that POST
   is acknowledged or given up, so one call's notifications are never in two POSTs at
   once: per-call order holds even with several POSTs in flight and with retries.
3. A full-roster notification (lazy: rendered when sent) supersedes an earlier unsent
   one of the same call; the newer one is appended at the end, so the roster a bot sees
   never runs ahead of the call updates queued before it.
4. A failed POST (connection error or 5xx) is retried with ``retry_delays``, same body
   and same ``X-Microsoft-Skype-Message-ID``; any other status is final.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import ssl
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from callbot.simulator.clock import Clock
from callbot.simulator.config import EmulatorConfig
from callbot.simulator.faults import FaultBoard
from callbot.simulator.identity import Identity, WrongKeyMode

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Notification:
    """One ``commsNotification`` waiting to go out.

    ``render`` builds the JSON when the batch is formed (so a superseded full roster is
    never rendered); ``kind`` is ``call``, ``roster`` or ``operation`` and ``tag`` the
    call state it reports, both used by the reorder fault.
    """

    call_id: str
    chain_id: str
    callback: str
    render: Callable[[], dict[str, Any]]
    kind: str = "call"
    tag: str = ""
    full_roster: bool = False
    taken: bool = False
    superseded: bool = False


@dataclass
class Channel:
    """The pending notifications and in-flight POSTs of one callback URL."""

    url: str
    pending: deque[Notification] = field(default_factory=deque)
    busy_calls: set[str] = field(default_factory=set)
    in_flight: int = 0
    roster_by_call: dict[str, Notification] = field(default_factory=dict)


@dataclass
class DeliveryStats:
    """Counters exposed through ``GET /_emulator/stats``."""

    enqueued: int = 0
    coalesced: int = 0
    posts: int = 0
    retries: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    duplicated_posts: int = 0
    redelivered_posts: int = 0
    status_counts: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "enqueued": self.enqueued,
            "coalesced": self.coalesced,
            "posts": self.posts,
            "retries": self.retries,
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": self.dropped,
            "duplicatedPosts": self.duplicated_posts,
            "redeliveredPosts": self.redelivered_posts,
            "statusCounts": dict(self.status_counts),
        }


class Notifier:
    """Queues, batches, signs and POSTs notifications; counts what happened."""

    def __init__(
        self,
        config: EmulatorConfig,
        identity: Identity,
        faults: FaultBoard,
        clock: Clock,
    ) -> None:
        self.config = config
        self.identity = identity
        self.faults = faults
        self.clock = clock
        self.stats = DeliveryStats()
        self._channels: dict[str, Channel] = {}
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._held: dict[str, Notification] = {}

    # --- public --------------------------------------------------------------------
    def enqueue(self, item: Notification) -> None:
        """Queue ``item`` behind everything already queued for its call.

        Must run on the emulator's event loop. Applies the reorder fault and full-roster
        coalescing.
        """
        self.stats.enqueued += 1
        held = self._held.pop(item.call_id, None)
        if held is None and self._hold_for_reorder(item):
            return
        self._append(item)
        if held is not None:
            logger.info(
                "fault notify_reorder: swapped two notifications of call %s",
                item.call_id,
            )
            self._append(held)

    def _append(self, item: Notification) -> None:
        channel = self._channels.get(item.callback)
        if channel is None:
            channel = self._channels[item.callback] = Channel(item.callback)
        if item.full_roster:
            earlier = channel.roster_by_call.get(item.call_id)
            if earlier is not None and not earlier.taken:
                earlier.superseded = True
                self.stats.coalesced += 1
            channel.roster_by_call[item.call_id] = item
        channel.pending.append(item)
        self._pump(channel)

    def pending_count(self) -> int:
        """Notifications queued and not yet handed to a POST."""
        return sum(
            1
            for channel in self._channels.values()
            for item in channel.pending
            if not item.superseded
        )

    def in_flight(self) -> int:
        return sum(channel.in_flight for channel in self._channels.values())

    def busy(self) -> bool:
        """True while anything is queued, in flight, or scheduled for re-delivery."""
        return bool(self._tasks) or bool(self._held) or self.pending_count() > 0

    async def close(self) -> None:
        """Cancel pending work and close the HTTP client."""
        self.reset()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reset(self) -> None:
        """Forget everything queued; in-flight POSTs finish but are not counted."""
        self._generation += 1
        self._channels.clear()
        self._held.clear()
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self.stats = DeliveryStats()

    # --- batching ------------------------------------------------------------------
    def _hold_for_reorder(self, item: Notification) -> bool:
        """The reorder fault: keep ``item`` back so the call's next one overtakes it.

        With scope ``establishing`` (the default) only the call-state updates Graph
        documents as possibly out of order (establishing/established, contract §3.2)
        are held; scope ``any`` holds any notification. A held notification nobody
        overtakes within a second goes out on its own.
        """
        spec = self.faults.active.get("notify_reorder")
        if spec is None or item.call_id in self._held:
            return False
        if spec.params.get("scope", "establishing") != "any" and not (
            item.kind == "call" and item.tag == "establishing"
        ):
            return False
        if self.faults.take("notify_reorder") is None:
            return False
        self._held[item.call_id] = item
        asyncio.get_running_loop().call_later(
            1.0, self._release_held, item, context=contextvars.Context()
        )
        return True

    def _release_held(self, item: Notification) -> None:
        if self._held.get(item.call_id) is item:
            del self._held[item.call_id]
            self._append(item)

    def _take_batch(self, channel: Channel) -> list[Notification]:
        batch: list[Notification] = []
        keep: deque[Notification] = deque()
        blocked = set(channel.busy_calls)
        while channel.pending:
            item = channel.pending.popleft()
            if item.superseded:
                continue
            if len(batch) >= self.config.batch_max:
                keep.append(item)
                keep.extend(channel.pending)
                channel.pending.clear()
                break
            if item.call_id in blocked:
                keep.append(item)
                continue
            item.taken = True
            batch.append(item)
        channel.pending = keep
        for item in batch:
            channel.busy_calls.add(item.call_id)
            if channel.roster_by_call.get(item.call_id) is item:
                del channel.roster_by_call[item.call_id]
        return batch

    def _pump(self, channel: Channel) -> None:
        while channel.in_flight < self.config.max_in_flight_per_callback:
            batch = self._take_batch(channel)
            if not batch:
                return
            channel.in_flight += 1
            self._spawn(self._deliver(channel, batch, self._generation))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sending -------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            verify: ssl.SSLContext | bool = True
            if self.config.webhook_ca:
                verify = ssl.create_default_context(cafile=self.config.webhook_ca)
            self._client = httpx.AsyncClient(
                timeout=self.config.delivery_timeout,
                verify=verify,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
        return self._client

    async def _deliver(
        self, channel: Channel, batch: list[Notification], generation: int
    ) -> None:
        try:
            await self._deliver_batch(channel, batch)
        except Exception:
            logger.exception("notification delivery to %s crashed", channel.url)
        finally:
            if generation == self._generation:
                channel.in_flight -= 1
                for item in batch:
                    channel.busy_calls.discard(item.call_id)
                self._pump(channel)

    async def _deliver_batch(self, channel: Channel, batch: list[Notification]) -> None:
        values: list[dict[str, Any]] = []
        for item in batch:
            if self.faults.take("notify_drop") is not None:
                self.stats.dropped += 1
                logger.info(
                    "fault notify_drop: dropped a notification of call %s", item.call_id
                )
                continue
            values.append(item.render())
        if not values:
            return
        body = json.dumps(
            {"@odata.type": "#microsoft.graph.commsNotifications", "value": values},
            separators=(",", ":"),
        ).encode()
        message_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Microsoft-Skype-Message-ID": message_id,
            "X-Microsoft-Skype-Chain-ID": batch[0].chain_id,
            "Client-Request-Id": str(uuid.uuid4()),
        }
        wrong = self.faults.take("notify_wrong_key")
        mode: WrongKeyMode | None = None
        if wrong is not None:
            mode = (
                "unknown_kid"
                if wrong.params.get("mode") == "unknown_kid"
                else "same_kid"
            )
        ok = await self._post_with_retries(
            channel.url, body, headers, mode, len(values)
        )
        if not ok:
            return
        if self.faults.take("notify_duplicate") is not None:
            self.stats.duplicated_posts += 1
            await self._post_once(channel.url, body, headers, mode)
        redeliver = self.faults.take("notify_redeliver")
        if redeliver is not None:
            delay = float(redeliver.params.get("delay", 1.0))
            self._spawn(self._redeliver(channel.url, body, headers, mode, delay))

    async def _redeliver(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        mode: WrongKeyMode | None,
        delay: float,
    ) -> None:
        await self.clock.sleep(delay)
        self.stats.redelivered_posts += 1
        await self._post_once(url, body, headers, mode)

    async def _post_with_retries(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        mode: WrongKeyMode | None,
        count: int,
    ) -> bool:
        delays = self.config.retry_delays
        for attempt in range(len(delays) + 1):
            status = await self._post_once(url, body, headers, mode)
            if status is not None and 200 <= status < 300:
                self.stats.delivered += count
                return True
            if status is not None and status < 500:
                break
            if attempt < len(delays):
                self.stats.retries += 1
                await asyncio.sleep(delays[attempt])
        self.stats.failed += count
        logger.warning("gave up delivering %d notifications to %s", count, url)
        return False

    async def _post_once(
        self, url: str, body: bytes, headers: dict[str, str], mode: WrongKeyMode | None
    ) -> int | None:
        signed = dict(headers)
        signed["Authorization"] = f"Bearer {self.identity.notification_token(mode)}"
        self.stats.posts += 1
        try:
            response = await self._http().post(url, content=body, headers=signed)
        except httpx.HTTPError as exc:
            self.stats.status_counts["error"] += 1
            logger.info("notification POST to %s failed: %s", url, type(exc).__name__)
            return None
        self.stats.status_counts[str(response.status_code)] += 1
        # One line per POST: DEBUG, or a scenario's deliveries drown everything else.
        logger.debug(
            "notification POST to %s: %d (message %s)",
            url,
            response.status_code,
            headers.get("X-Microsoft-Skype-Message-ID", ""),
        )
        return response.status_code
