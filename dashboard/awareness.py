"""What supervisors see of each other and of trouble, on the live socket.

A mixin of ``LiveConsumer``: presence on call pages (who else watches, published
to the call's group as ``call.presence``), recent acts (``call.act``: who asked
for what on whom, and whether someone else acted on the same participant within
``presence.ACT_CONFLICT_SECONDS``), and the board's alerts (``alerts.delta`` from
the group, ``board.pulse`` from this process's pulse, ``alert.dismiss`` from the
page). Reads through ``presence``, ``pulse`` and ``callbot.calls.alerts``; the one
write is a dismissal, through ``alerts.dismiss_alert``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from datetime import UTC, datetime
from typing import Any

from callbot.calls import alerts
from callbot.calls.kinds import LABELS
from callbot.calls.live import call_group, iso
from dashboard import presence, protocol
from dashboard.kpis import board_kpis
from dashboard.permissions import UserLike, can_act
from dashboard.protocol import ActionRequest
from dashboard.pulse import board_pulse
from dashboard.threadhop import in_thread

logger = logging.getLogger(__name__)

PRESENCE_TYPE = "call.presence"
ACT_TYPE = "call.act"


def board_extra(user: UserLike) -> dict[str, Any]:
    """The board snapshot's KPIs, and its open alerts for those who may act.

    Nested in objects: a snapshot's top-level lists are the ones split over its
    parts (``snapshots.snapshot_parts``), and these are not."""
    extra: dict[str, Any] = {"kpis": board_kpis()}
    if can_act(user):
        extra["alerts"] = {"open": alerts.open_alerts()}
    return extra


class AwarenessMixin:
    """Presence, acts and alerts for ``LiveConsumer`` (which provides ``user``,
    ``channel_layer``, ``channel_name``, ``_send`` and ``_error``)."""

    user: UserLike
    channel_layer: Any
    channel_name: str
    watching_calls: set[int]
    sees_alerts: bool = False
    # Set at connect: whether the person may act (and so sees alerts).
    may_act: bool = False
    last_watchers: dict[int, list[str]]

    async def _send(self, content: dict[str, Any]) -> None:
        raise NotImplementedError

    async def _error(self, code: str, message: str, request_id: str = "") -> None:
        raise NotImplementedError

    # --- presence -------------------------------------------------------------------

    async def presence_join(self, call_id: int) -> None:
        """Join the call's watchers and tell the others. Never raises: a presence
        store that is away costs the page its "also watching", not the call."""
        try:
            watchers = await presence.presence_store().join(
                call_id, self.channel_name, self.user.get_username()
            )
            await self._publish_presence(call_id, watchers)
        except Exception:
            logger.exception("joining the presence of call %s failed", call_id)
        _refresher().add(self)

    async def presence_leave(self, call_id: int) -> None:
        """Leave the call's watchers and tell the others (never raises)."""
        try:
            watchers = await presence.presence_store().leave(call_id, self.channel_name)
            await self._publish_presence(call_id, watchers)
        except Exception:
            logger.exception("leaving the presence of call %s failed", call_id)

    async def presence_leave_all(self) -> None:
        _refresher().discard(self)
        for call_id in list(getattr(self, "watching_calls", ())):
            await self.presence_leave(call_id)

    async def watchers_of(self, call_id: int) -> list[str]:
        """Who watches the call (for its snapshot); empty if the store is away."""
        try:
            return await presence.presence_store().watchers(call_id)
        except Exception:
            logger.exception("reading the watchers of call %s failed", call_id)
            return []

    def _watchers_seen(self) -> dict[int, list[str]]:
        """The watchers last published per call. Made on first use: a join that
        failed (the presence store away) publishes nothing, and the refresher
        that retries it later must still find the dict."""
        if not hasattr(self, "last_watchers"):
            self.last_watchers = {}
        return self.last_watchers

    async def _publish_presence(self, call_id: int, watchers: list[str]) -> None:
        # The socket that joined or left learns the list from its snapshot (or no
        # longer cares): the message skips it.
        self._watchers_seen()[call_id] = watchers
        await self.channel_layer.group_send(
            call_group(call_id),
            {
                "type": PRESENCE_TYPE,
                "call_id": call_id,
                "watchers": watchers,
                "skip": self.channel_name,
            },
        )

    async def refresh_presence(self) -> None:
        """Renew this socket's entries; publish a call's list when it changed
        (someone's process died, and their entry expired). Never raises."""
        store = presence.presence_store()
        for call_id in list(self.watching_calls):
            try:
                watchers = await store.join(
                    call_id, self.channel_name, self.user.get_username()
                )
                if watchers != self._watchers_seen().get(call_id):
                    await self._publish_presence(call_id, watchers)
            except Exception:
                logger.exception("refreshing presence failed")

    async def call_presence(self, event: dict[str, Any]) -> None:
        if (
            event.get("call_id") in self.watching_calls
            and event.get("skip") != self.channel_name
        ):
            await self._send({k: v for k, v in event.items() if k != "skip"})

    # --- acts -----------------------------------------------------------------------

    async def publish_act(
        self, request: ActionRequest, shapes: list[dict[str, Any]]
    ) -> None:
        """Tell the call's watchers who asked for what on whom (never raises)."""
        if request.call is None:
            return
        try:
            # "Mute everyone" names no participant: its actions' targets are many.
            target = next(
                (s["target"] for s in shapes if s.get("target")), request.participant
            )
            if not request.participant:
                target = ""
            now = time.time()
            act: dict[str, Any] = {
                "user": self.user.get_username(),
                "kind": request.kind,
                "label": LABELS.get(request.kind, request.kind),
                "participant": request.participant,
                "target": target,
                "at": now,
            }
            others = await presence.presence_store().record_act(request.call, act)
            await self.channel_layer.group_send(
                call_group(request.call),
                {
                    "type": ACT_TYPE,
                    "call_id": request.call,
                    **act,
                    "at_iso": iso_from_epoch(now),
                    "others": others,
                    "skip": self.channel_name,
                },
            )
        except Exception:
            logger.exception(
                "publishing an act failed", extra={"call_id": request.call}
            )

    async def call_act(self, event: dict[str, Any]) -> None:
        # The actor's page knows its act from ``action.accepted`` and finds a
        # clash itself, among the acts of others it was sent.
        if (
            event.get("call_id") in self.watching_calls
            and event.get("skip") != self.channel_name
        ):
            await self._send({k: v for k, v in event.items() if k != "skip"})

    # --- alerts and the pulse ---------------------------------------------------------

    async def board_watch(self) -> None:
        self.sees_alerts = await in_thread(can_act, self.user)
        board_pulse().watch(self.channel_name, self._send, alerts=self.sees_alerts)

    def board_unwatch(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to stop
            board_pulse().unwatch(self.channel_name)

    async def alerts_delta(self, event: dict[str, Any]) -> None:
        if getattr(self, "watching_board", False) and self.sees_alerts:
            await self._send(event)

    async def call_alerts(self, event: dict[str, Any]) -> None:
        """A watched call's own alerts raised or cleared (``call.alerts``), for the
        people who may act, as on the board."""
        if event.get("call_id") in self.watching_calls and self.may_act:
            await self._send(event)

    async def dismiss_alert(self, content: dict[str, Any]) -> None:
        request_id = protocol.request_id(content)
        alert_id = protocol.call_id(content.get("alert"))
        if alert_id is None:
            await self._error("invalid", "An alert is named by its number.", request_id)
            return
        if not await in_thread(can_act, self.user):
            await self._error(
                "forbidden", "Only supervisors and admins dismiss alerts.", request_id
            )
            return
        done = await in_thread(alerts.dismiss_alert, alert_id, self.user.get_username())
        await self._send(
            {
                "type": "alert.dismissed",
                "request_id": request_id,
                "alert": alert_id,
                "dismissed": done,
            }
        )


def iso_from_epoch(seconds: float) -> str | None:
    return iso(datetime.fromtimestamp(seconds, tz=UTC))


# Sockets whose presence a refresher renews at once.
REFRESH_BATCH = 50


class PresenceRefresher:
    """One task per event loop renews the entries of every socket there that
    watches a call, each ``PRESENCE_REFRESH_SECONDS``, instead of one sleeping
    task per socket (its coroutine, frame and handle were about 2 KiB of each
    subscriber's memory). Sockets are held weakly: one that went without
    leaving is dropped with it."""

    def __init__(self) -> None:
        self.sockets: weakref.WeakSet[AwarenessMixin] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: AwarenessMixin) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, socket: AwarenessMixin) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(presence.PRESENCE_REFRESH_SECONDS)
            sockets = list(self.sockets)
            # A few at a time: one round trip's wait per batch, not per socket.
            for start in range(0, len(sockets), REFRESH_BATCH):
                batch = sockets[start : start + REFRESH_BATCH]
                await asyncio.gather(*(socket.refresh_presence() for socket in batch))


_refreshers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PresenceRefresher] = (
    weakref.WeakKeyDictionary()
)


def _refresher() -> PresenceRefresher:
    """The running event loop's refresher (each server, and each test, has its own
    loop; a task belongs to one)."""
    loop = asyncio.get_running_loop()
    refresher = _refreshers.get(loop)
    if refresher is None:
        refresher = _refreshers[loop] = PresenceRefresher()
    return refresher
