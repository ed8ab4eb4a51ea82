"""The live socket at ``ws/live/``: board and call snapshots, deltas, and actions.

One consumer per browser tab. Protocol (JSON both ways; DESIGN.md "Live protocol"):

* client → server: ``subscribe`` / ``unsubscribe`` ``{"board": true}`` or
  ``{"call": <id>}``; ``resync`` (a fresh snapshot of every subscription, after a
  gap or a reconnect); ``action`` ``{"request_id", "call", "kind", "participant",
  "params"}``.
* server → client: ``hello`` (who you are, what you may do, and ``labels``: each
  action kind's words for the page); ``board.snapshot``;
  ``call.snapshot``; ``calls.delta`` and ``call.delta`` as ``calls/live.py``
  publishes them, each carrying versions; ``action.accepted`` /
  ``action.refused``; ``error``.

Every client message re-reads the user from the session (a signed-out socket is
closed) and checks the role; an action from a role that may not act is refused by
the service, which audits the refusal. Reads go through ``snapshots.py``, actions
through ``callbot.calls.services``; nothing here writes rows itself.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from django.conf import settings

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from callbot.calls import services
from callbot.calls.access import ActionRefusedError
from callbot.calls.kinds import BROWSER_KINDS, LABELS
from callbot.calls.live import LIVE_CALLS_GROUP, action_shape, call_group
from dashboard import snapshots
from dashboard.permissions import UserLike, can_act, can_view, role_of
from dashboard.signals import session_group

logger = logging.getLogger(__name__)

# Close codes in the application range (4000-4999), readable by the page.
CLOSE_SIGNED_OUT = 4401
CLOSE_FORBIDDEN = 4403


def _session_store(session_key: str) -> Any:
    """A session store that reads the session from its backend again."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def _client_ip(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _perform(
    user: UserLike,
    call_id: int,
    kind: str,
    participant: str,
    params: dict[str, Any],
    ip: str | None,
) -> list[dict[str, Any]]:
    """Ask the service for the action(s); the shapes of what was queued."""
    actions = services.request(
        kind,
        actor=user,
        call=call_id,
        participant_id=participant,
        params=params,
        client_ip=ip,
    )
    return [action_shape(a) for a in actions]


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Pushes the board and calls a user watches; takes their actions."""

    user: UserLike
    watching_board: bool
    watching_calls: set[int]
    session_group: str

    async def connect(self) -> None:
        self.watching_board = False
        self.watching_calls = set()
        user = self.scope.get("user")
        # Refusals accept first and then close with a code: a close during the
        # handshake reaches the page as a bare 1006, and it would keep retrying
        # instead of sending the person to the sign-in page.
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        allowed, role, acts = await database_sync_to_async(self._rights)(user)
        if not allowed:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        await self.accept()
        session_key = getattr(self.scope.get("session"), "session_key", None)
        self.session_group = session_group(session_key) if session_key else ""
        if self.session_group:
            await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.send_json(
            {
                "type": "hello",
                "user": user.get_username(),
                "role": role,
                "can_act": acts,
                # Every kind's label, for the page's timeline and outcomes.
                "labels": LABELS,
            }
        )

    @staticmethod
    def _rights(user: UserLike) -> tuple[bool, str, bool]:
        return can_view(user), role_of(user), can_act(user)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "session_group", ""):
            await self.channel_layer.group_discard(
                self.session_group, self.channel_name
            )
        if self.watching_board:
            await self.channel_layer.group_discard(LIVE_CALLS_GROUP, self.channel_name)
        for call_id in self.watching_calls:
            await self.channel_layer.group_discard(
                call_group(call_id), self.channel_name
            )

    # --- from the browser ---------------------------------------------------------

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The session may have ended or the role changed since connect: check again,
        # reading the session afresh (the scope's copy was loaded at connect).
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        fresh = _session_store(session_key=key) if key else None
        user = await get_user({"session": fresh}) if fresh is not None else None
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        self.user = user
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "message": "expected a JSON object"})
            return
        kind = content.get("type")
        if kind == "action":
            await self._action(content)
            return
        if not await database_sync_to_async(can_view)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if kind == "subscribe":
            await self._subscribe(content)
        elif kind == "unsubscribe":
            await self._unsubscribe(content)
        elif kind == "resync":
            await self._resync(content)
        else:
            await self.send_json(
                {"type": "error", "message": f"unknown message type {kind!r}"}
            )

    async def _subscribe(self, content: dict[str, Any]) -> None:
        if content.get("board"):
            if not self.watching_board:
                # Join before reading: a change committed meanwhile arrives as a
                # delta after the snapshot and is dropped or applied by version.
                await self.channel_layer.group_add(LIVE_CALLS_GROUP, self.channel_name)
                self.watching_board = True
            await self.send_json(
                await database_sync_to_async(snapshots.board_snapshot)()
            )
        if content.get("call") is not None:
            await self._subscribe_call(content["call"])

    async def _subscribe_call(self, raw_id: Any) -> None:
        try:
            call = await database_sync_to_async(snapshots.access_call)(
                self.user, raw_id
            )
        except snapshots.CallAccessError as exc:
            await self.send_json({"type": "error", "call": raw_id, "message": str(exc)})
            return
        if call.pk not in self.watching_calls:
            await self.channel_layer.group_add(call_group(call.pk), self.channel_name)
            self.watching_calls.add(call.pk)
        await self.send_json(
            await database_sync_to_async(snapshots.call_snapshot)(call.pk)
        )

    async def _unsubscribe(self, content: dict[str, Any]) -> None:
        if content.get("board") and self.watching_board:
            await self.channel_layer.group_discard(LIVE_CALLS_GROUP, self.channel_name)
            self.watching_board = False
        call_id = content.get("call")
        if isinstance(call_id, int) and call_id in self.watching_calls:
            await self.channel_layer.group_discard(
                call_group(call_id), self.channel_name
            )
            self.watching_calls.discard(call_id)

    async def _resync(self, content: dict[str, Any]) -> None:
        """A fresh snapshot of what the client names, or of everything it watches."""
        wants_board = content.get("board", not content.get("call"))
        if wants_board and self.watching_board:
            await self.send_json(
                await database_sync_to_async(snapshots.board_snapshot)()
            )
        named = content.get("call")
        for call_id in sorted(self.watching_calls):
            if named is None or named == call_id:
                await self._subscribe_call(call_id)

    async def _action(self, content: dict[str, Any]) -> None:
        request_id = str(content.get("request_id", ""))[:64]
        kind = str(content.get("kind", ""))[:64]
        call_id = content.get("call")
        participant = str(content.get("participant") or "")[:64]
        params = content.get("params") or {}

        async def refuse(code: str, message: str) -> None:
            await self.send_json(
                {
                    "type": "action.refused",
                    "request_id": request_id,
                    "kind": kind,
                    "call": call_id,
                    "participant": participant,
                    "code": code,
                    "message": message,
                }
            )

        if kind not in BROWSER_KINDS:
            await refuse("invalid", f"Unknown action {kind!r}.")
            return
        if not isinstance(call_id, int) or not isinstance(params, dict):
            await refuse("invalid", "An action names a call by its number.")
            return
        try:
            shapes = await database_sync_to_async(_perform)(
                self.user, call_id, kind, participant, params, _client_ip(self.scope)
            )
        except ActionRefusedError as exc:
            # The service has audited the refusal (who, what, why) already.
            logger.info(
                "refused %s from %s: %s",
                kind,
                self.user.get_username(),
                exc.code,
                extra={"call_id": call_id},
            )
            await refuse(exc.code, exc.message)
            return
        await self.send_json(
            {
                "type": "action.accepted",
                "request_id": request_id,
                "kind": kind,
                "call": call_id,
                "actions": shapes,
            }
        )

    # --- from the channel layer ---------------------------------------------------

    async def call_delta(self, event: dict[str, Any]) -> None:
        if event.get("call_id") in self.watching_calls:
            await self.send_json(event)

    async def session_ended(self, event: dict[str, Any]) -> None:
        """The user signed out (``signals.py``): the page goes to the sign-in page."""
        await self.close(code=CLOSE_SIGNED_OUT)

    async def calls_delta(self, event: dict[str, Any]) -> None:
        if self.watching_board:
            await self.send_json(event)
