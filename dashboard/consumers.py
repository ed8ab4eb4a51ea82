"""The live socket at ``ws/live/``: board and call snapshots, deltas, and actions.

One consumer per browser tab. Protocol (JSON text both ways; DESIGN.md "Live
protocol"; frame rules and limits in ``protocol.py``):

* client → server: ``subscribe`` / ``unsubscribe`` ``{"board": true}`` or
  ``{"call": <id>}``; ``resync`` (a fresh snapshot of every subscription, after a
  gap or a reconnect); ``action`` ``{"request_id", "call", "kind", "participant",
  "params"}``; ``ping`` ``{"request_id"}``.
* server → client: ``hello`` (who you are, what you may do, ``labels``: each
  action kind's words for the page, ``reasons``: each "not offered" code's
  sentence, and for people who act ``answer_flows`` and
  ``redirect_targets``, what the ringing-call controls offer); ``board.snapshot`` and ``call.snapshot`` in
  parts (``snapshot``, ``part``, ``more``, and ``parts`` on the last: see
  ``snapshots.py`` and ``docs/live-protocol.md``; the board's is streamed); ``calls.delta``
  and ``call.delta`` as ``calls/live.py`` publishes them, each carrying versions;
  ``calls.notice`` to board watchers (the bot dropped from a call);
  ``action.accepted`` / ``action.refused``; ``pong``; ``call.presence``,
  ``call.act``, ``alerts.delta``, ``board.pulse`` and ``alert.dismissed``
  (``awareness.py``); ``error`` with a ``code``
  and a sentence (and the message's ``request_id``, when it had one).

Every frame gets an answer and the socket stays open: a frame that is not a
message of the protocol gets an ``error``, a bad ``action`` an ``action.refused``.
Actions are rate limited per socket and per user (``ratelimit.py``, settings
``LIVE_ACTION_RATE`` and ``LIVE_ACTION_BURST``; ``mute_all`` is one request), and
refused over the limit with ``rate_limited``, audited like every refusal. A socket
that keeps earning errors gets a last ``error`` ``flooded`` and is closed with
``CLOSE_FLOODED`` (daphne drops close reasons; the page knows the code).
A socket whose browser has gone before the server's disconnect reaches the
consumer is sent nothing more, quietly (``SOCKET_GONE``): a closed page is not a
fault of the application.

Every client message re-reads the user from the session (a signed-out socket is
closed) and checks the role; an action from a role that may not act is refused by
the service, which audits the refusal. Reads go through ``snapshots.py``, actions
through ``incoming.request`` (``callbot.calls.services``, or the IVR for an answer
into a flow); nothing here writes rows itself but, through
``audit.record_refusal``, the refusals the service never saw (over the limit, or
a kind Callbot knows that the page never offers).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from autobahn.exception import Disconnected
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

from callbot.calls import alerts, audit
from callbot.calls.access import ActionRefusedError
from callbot.calls.availability import REASONS
from callbot.calls.kinds import BROWSER_KINDS, LABELS
from callbot.calls.live import LAYER_UNREACHABLE, action_shape, call_group
from callbot.observability import hops, logcontext, metrics
from dashboard import incoming, protocol, ratelimit, snapshots
from dashboard.awareness import AwarenessMixin, board_extra
from dashboard.boardrelay import BoardInbox, board_relay
from dashboard.permissions import (
    UserLike,
    can_act,
    can_view,
    forget_permissions,
    role_of,
)
from dashboard.protocol import (
    CLOSE_FLOODED,
    CLOSE_FLOODED_REASON,
    CLOSE_FORBIDDEN,
    CLOSE_LAYER_UNREACHABLE,
    CLOSE_SIGNED_OUT,
    ActionRequest,
    FrameError,
)
from dashboard.ratelimit import TokenBucket
from dashboard.signals import session_group
from dashboard.socketauth import session_user
from dashboard.threadhop import in_thread

logger = logging.getLogger(__name__)


# What the server raises when a frame is sent to a socket whose browser has gone
# (the page closed or lost its network a moment before a group message reached
# it): daphne's ``Disconnected`` (a RuntimeError), and the OSError the ASGI spec
# (websocket 2.4) asks of servers such as uvicorn. Only the socket's own send is
# guarded: the same errors from anything else still surface.
SOCKET_GONE: tuple[type[Exception], ...] = (Disconnected, OSError)


def _client_ip(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def rate_limited(wait: float) -> ActionRefusedError:
    seconds = max(1, math.ceil(wait))
    return ActionRefusedError(
        "rate_limited",
        f"Too many actions in a short time; wait {seconds} s before the next one.",
    )


def _perform(
    user: UserLike, request: ActionRequest, ip: str | None, bucket: TokenBucket
) -> list[dict[str, Any]]:
    """Take a token from the socket's and the user's buckets, then ask the service
    for the action(s); the shapes of what was queued.

    Raises ``ActionRefusedError``, audited: by the service, or here when over the
    limit (the service never saw the request).
    """
    # A signed-out socket never gets here (checked on every message); 0 keeps mypy
    # honest about AnonymousUser.pk.
    wait = bucket.take() or ratelimit.take_user_action(user.pk or 0)
    if wait:
        refused = rate_limited(wait)
        audit.record_refusal(
            user, request.kind, request.call, request.participant, refused, ip
        )
        raise refused
    actions = incoming.request(
        request.kind,
        actor=user,
        call=request.call,
        participant_id=request.participant,
        params=request.params,
        client_ip=ip,
    )
    return [action_shape(a) for a in actions]


@dataclass(frozen=True)
class Acted:
    """What ``_act`` did with one action message."""

    user: UserLike | None  # None: the session has ended
    shapes: list[dict[str, Any]] = field(default_factory=list)
    refused: ActionRefusedError | None = None
    unoffered: bool = False  # refused before the service saw it: a bad frame


def _act(
    session_key: str | None,
    content: dict[str, Any],
    request: ActionRequest,
    ip: str | None,
    bucket: TokenBucket,
) -> Acted:
    """One action message in one trip to the database thread: the session's user
    read afresh, the frame checked (a refusal of a kind Callbot knows is audited,
    as the service audits its own), then ``_perform``. Each trip costs the click
    a hand-over of the interpreter between the event loop and this thread, which
    a busy process (ingest's threads) makes several milliseconds long."""
    user = session_user(session_key)
    if user is None:
        return Acted(None)
    try:
        protocol.check_action(content, request, BROWSER_KINDS, LABELS)
    except ActionRefusedError as exc:
        if request.kind in LABELS:
            # A person asked for a kind Callbot knows: on the record, as the
            # service records its refusals. Made-up kinds are only answered.
            audit.record_refusal(
                user, request.kind, request.call, request.participant, exc, ip
            )
        return Acted(user, refused=exc, unoffered=True)
    try:
        return Acted(user, _perform(user, request, ip, bucket))
    except ActionRefusedError as exc:
        # Audited already (who, what, why), by the service or by ``_perform``.
        return Acted(user, refused=exc)


def encode(content: Any) -> str:
    """A message's JSON text: orjson, several times faster than ``json`` on the
    hot path (every delta to every socket), and UTF-8 where ``json`` escapes, so
    never longer than the ``json`` the snapshot parts are measured with."""
    return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS).decode()


def _encoded(parts: list[dict[str, Any]]) -> list[str]:
    return [encode(part) for part in parts]


def _next_part(parts: Iterator[dict[str, Any]]) -> str | None:
    """The next part's text, read from the database in this (sync) thread."""
    part = next(parts, None)
    return None if part is None else encode(part)


def _board_start(
    snapshot_id: str, user: UserLike
) -> tuple[Iterator[dict[str, Any]], str | None]:
    """The board's stream and its first part's text, in one trip to the sync thread."""
    parts = snapshots.board_snapshot_stream(snapshot_id, extra=board_extra(user))
    return parts, _next_part(parts)


def _call_parts(
    call_id: int, snapshot_id: str, watchers: list[str], with_alerts: bool
) -> list[str]:
    extra: dict[str, Any] = {"presence": {"watchers": watchers}}
    if with_alerts:  # the call's own open alerts, for people who may act
        extra["alerts"] = {"open": alerts.open_alerts(call_id=call_id)}
    return _encoded(snapshots.call_snapshot_parts(call_id, snapshot_id, extra=extra))


async def dispatch_each(
    sources: list[Callable[[], Coroutine[Any, Any, dict[str, Any]]]],
    dispatch: Callable[[dict[str, Any]], Awaitable[None]],
    inbox: BoardInbox | None = None,
) -> None:
    """Channels' ``await_many_dispatch``: one task per source (the socket's
    messages, its channel's), each message dispatched in turn, the source then
    read again; but woken by a future of its own instead of ``asyncio.wait``,
    whose two coroutines, set and callbacks every idle socket kept (1.5 KiB
    of each subscriber's memory, bench/README.md). ``inbox``: the board's
    messages the process's relay hands this socket (``boardrelay``), read
    here too, with no task of its own."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(source()) for source in sources]
    try:
        while True:
            if not any(task.done() for task in tasks) and not inbox:
                woken: asyncio.Future[None] = loop.create_future()

                def wake(_: object, woken: asyncio.Future[None] = woken) -> None:
                    if not woken.done():
                        woken.set_result(None)

                for task in tasks:
                    task.add_done_callback(wake)
                if inbox is not None:
                    inbox.wake = woken
                try:
                    await woken
                finally:
                    for task in tasks:
                        task.remove_done_callback(wake)
                    if inbox is not None:
                        inbox.wake = None
            for i, task in enumerate(tasks):
                if task.done():
                    await dispatch(task.result())
                    tasks[i] = loop.create_task(sources[i]())
            while inbox:
                await dispatch(inbox.take())
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class LiveConsumer(AwarenessMixin, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Pushes the board and calls a user watches; takes their actions."""

    user: UserLike
    board_inbox: BoardInbox
    watching_board: bool
    watching_calls: set[int]
    session_group: str
    # Set when the server said the browser had gone: nothing more is sent.
    gone: bool = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the socket with a send that stops quietly once the browser is gone.

        The server tells the consumer of a closed socket with a disconnect message
        that can arrive after a group message already in dispatch tried to send;
        that send raising would end the consumer and be logged as an error of the
        application. Every frame the consumer sends (``send_json``, the snapshot
        streams, accept and close) goes through this one function."""

        async def send_while_open(message: dict[str, Any]) -> None:
            if self.gone:
                return
            try:
                await send(message)
            except SOCKET_GONE as exc:
                self.gone = self.closing = True
                logger.debug(
                    "live socket %s closed before a %s reached it: %s",
                    getattr(self, "channel_name", "?"),
                    message.get("type"),
                    exc,
                )

        # Channels' ``AsyncConsumer.__call__``, with ``dispatch_each`` for its
        # ``await_many_dispatch``.
        self.scope = scope
        self.base_send = send_while_open
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(
                self.channel_layer.receive, self.channel_name
            )
            sources.append(self.channel_receive)
        self.board_inbox = BoardInbox()
        try:
            with contextlib.suppress(StopConsumer):
                await dispatch_each(sources, self.dispatch, self.board_inbox)
        except LAYER_UNREACHABLE as exc:
            # Redis gone (a restart, a network cut): every open socket meets it
            # at once, and each page retries with its backoff until it is back;
            # one line each, not a traceback per socket and per retry.
            logger.warning(
                "live socket %s closed: the channel layer is unreachable (%s)",
                getattr(self, "channel_name", "?"),
                exc,
            )
            self._uncount()
            with contextlib.suppress(Exception):
                await self._close(CLOSE_LAYER_UNREACHABLE)
        finally:
            # A consumer that ended on an error never had ``disconnect``: its
            # socket leaves the board's relay all the same.
            if getattr(self, "watching_board", False):
                board_relay(self.channel_layer).leave(self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its trip to the sync thread before every
        message (``aclose_old_connections``): every read here goes through
        ``in_thread``, which closes old connections on the thread itself, and a
        group message (a delta to each socket) needs no database."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.watching_board = False
        self.watching_calls = set()
        self.closing = False
        self.snapshot_count = 0
        self.messages = TokenBucket(
            rate=protocol.MESSAGE_RATE, burst=protocol.MESSAGE_BURST
        )
        self.strikes = TokenBucket(
            rate=1 / protocol.STRIKE_FORGIVE_SECONDS, burst=protocol.STRIKE_BURST
        )
        self.actions = ratelimit.socket_action_bucket()
        # Out of the scope: the consumer keeps its own, re-read at each message,
        # and the one it replaces is not kept alive by the scope.
        user = self.scope.pop("user", None)
        # Refusals accept first and then close with a code: a close during the
        # handshake reaches the page as a bare 1006, and it would keep retrying
        # instead of sending the person to the sign-in page.
        if user is None or not user.is_authenticated:
            await self.accept()
            await self._close(CLOSE_SIGNED_OUT)
            return
        allowed, role, acts, offers = await in_thread(self._rights, user)
        forget_permissions(user)
        if not allowed:
            await self.accept()
            await self._close(CLOSE_FORBIDDEN)
            return
        self.may_act = acts
        self.user = user
        await self.accept()
        metrics.LIVE_SOCKETS.inc()
        self.counted = True
        logcontext.bind(user=user.get_username())  # this connection's task only
        session_key = self._session_key()
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
                # Every "not offered" reason's sentence by its code: rows carry
                # only the codes (``availability.unavailable``).
                "reasons": REASONS,
                # For people who may act: the flows and saved targets the ringing
                # call controls offer.
                **offers,
            }
        )

    @staticmethod
    def _rights(user: UserLike) -> tuple[bool, str, bool, dict[str, Any]]:
        acts = can_act(user)
        offers: dict[str, Any] = incoming.choices() if acts else {}
        return can_view(user), role_of(user), acts, offers

    def _uncount(self) -> None:
        """This socket out of ``callbot_live_sockets``, once."""
        if getattr(self, "counted", False):
            self.counted = False
            metrics.LIVE_SOCKETS.dec()

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self._uncount()
        if getattr(self, "session_group", ""):
            await self.channel_layer.group_discard(
                self.session_group, self.channel_name
            )
        if getattr(self, "watching_board", False):
            board_relay(self.channel_layer).leave(self.channel_name)
            self.board_unwatch()
        await self.presence_leave_all()
        for call_id in getattr(self, "watching_calls", ()):
            await self.channel_layer.group_discard(
                call_group(call_id), self.channel_name
            )

    @classmethod
    async def encode_json(cls, content: dict[str, Any]) -> str:
        return encode(content)

    async def _close(self, code: int, reason: str | None = None) -> None:
        # Frames already queued behind this one are ignored from here on.
        self.closing = True
        await self.close(code=code, reason=reason)

    async def _send(self, content: dict[str, Any]) -> None:
        if not self.closing:
            await self.send_json(content)

    async def _error(self, code: str, message: str, request_id: str = "") -> None:
        """Answer with an error, and close the socket once it has earned too many."""
        answer: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id:
            answer["request_id"] = request_id
        await self._send(answer)
        await self._strike()

    async def _strike(self) -> None:
        if self.strikes.take() and not self.closing:
            logger.warning(
                "closing a live socket of %s: too many bad or excess messages",
                getattr(getattr(self, "user", None), "username", "?"),
            )
            # Daphne drops close reasons, so the reason also goes as a last message.
            await self._send(
                {"type": "error", "code": "flooded", "message": CLOSE_FLOODED_REASON}
            )
            await self._close(CLOSE_FLOODED, CLOSE_FLOODED_REASON)

    # --- from the browser ---------------------------------------------------------

    async def receive(
        self,
        text_data: str | None = None,
        bytes_data: bytes | None = None,
        **kwargs: Any,
    ) -> None:
        """Every frame: within the socket's message budget, decoded strictly, then
        handled; whatever goes wrong is answered, never raised (a raise would end
        the socket with 1011 and the page would reconnect into the same fault)."""
        if self.closing:
            return
        try:
            if self.messages.take():
                await self._error("rate_limited", "Too many messages; slow down.")
                return
            try:
                content = protocol.decode(text_data, bytes_data)
            except FrameError as exc:
                await self._error(exc.code, exc.message)
                return
            await self.receive_json(content)
            forget_permissions(getattr(self, "user", None))
        except Exception:
            logger.exception(
                "a live socket message failed",
                extra={"user": getattr(getattr(self, "user", None), "pk", None)},
            )
            await self._error(
                "server_error", "The server could not handle that message."
            )

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        # The session may have ended or the role changed since connect: check again,
        # reading the session afresh (an action does so in its own trip).
        kind = protocol.message_type(content)
        if kind == "action":
            await self._action(content)
            return
        user = await in_thread(session_user, self._session_key())
        if user is None:
            await self._close(CLOSE_SIGNED_OUT)
            return
        self.user = user
        if kind == "alert.dismiss":
            await self.dismiss_alert(content)
            return
        if not await in_thread(can_view, user):
            await self._close(CLOSE_FORBIDDEN)
            return
        if kind == "subscribe":
            await self._subscribe(content)
        elif kind == "unsubscribe":
            await self._unsubscribe(content)
        elif kind == "resync":
            await self._resync(content)
        elif kind == "ping":
            await self._send(
                {"type": "pong", "request_id": protocol.request_id(content)}
            )
        else:
            shown = repr(content["type"][:64]) if kind else "missing"
            await self._error(
                "unknown_type",
                f"Unknown message type {shown}; expected subscribe, unsubscribe, "
                "resync, action, alert.dismiss or ping.",
                protocol.request_id(content),
            )

    async def _subscribe(self, content: dict[str, Any]) -> None:
        if content.get("board") is True:
            if not self.watching_board:
                # Join before reading: a change committed meanwhile arrives as a
                # delta after the snapshot and is dropped or applied by version.
                await board_relay(self.channel_layer).join(
                    self.channel_name, self.board_inbox
                )
                self.watching_board = True
                await self.board_watch()
            await self._send_board()
        if content.get("call") is not None:
            await self._subscribe_call(content["call"], protocol.request_id(content))
        elif content.get("board") is not True:
            await self._error(
                "invalid",
                'Subscribe to {"board": true} or {"call": <id>}.',
                protocol.request_id(content),
            )

    async def _subscribe_call(self, raw_id: Any, request_id: str = "") -> None:
        call_id = protocol.call_id(raw_id)
        if call_id is None:
            await self._error("invalid", "A call is named by its number.", request_id)
            return
        try:
            call = await in_thread(snapshots.access_call, self.user, call_id)
        except snapshots.CallAccessError as exc:
            answer: dict[str, Any] = {
                "type": "error",
                "code": "call_not_found",
                "call": call_id,
                "message": str(exc),
            }
            if request_id:
                answer["request_id"] = request_id
            await self._send(answer)
            return
        if call.pk not in self.watching_calls:
            await self.channel_layer.group_add(call_group(call.pk), self.channel_name)
            self.watching_calls.add(call.pk)
            await self.presence_join(call.pk)
        await self._send_call(call.pk)

    def _next_snapshot_id(self) -> str:
        self.snapshot_count += 1
        return str(self.snapshot_count)

    async def _send_board(self) -> None:
        """Stream the board: each part leaves once read, so the page paints its
        first rows while the rest are read."""
        parts, text = await in_thread(_board_start, self._next_snapshot_id(), self.user)
        while text is not None and not self.closing:
            await self.send(text_data=text)
            text = await in_thread(_next_part, parts)

    async def _send_call(self, call_id: int) -> None:
        parts = await in_thread(
            _call_parts,
            call_id,
            self._next_snapshot_id(),
            await self.watchers_of(call_id),
            self.may_act,
        )
        for text in parts:
            if self.closing:
                return
            await self.send(text_data=text)

    async def _unsubscribe(self, content: dict[str, Any]) -> None:
        if content.get("board") is True and self.watching_board:
            board_relay(self.channel_layer).leave(self.channel_name)
            self.watching_board = False
            self.board_unwatch()
        call_id = protocol.call_id(content.get("call"))
        if call_id is not None and call_id in self.watching_calls:
            await self.presence_leave(call_id)
            await self.channel_layer.group_discard(
                call_group(call_id), self.channel_name
            )
            self.watching_calls.discard(call_id)

    async def _resync(self, content: dict[str, Any]) -> None:
        """A fresh snapshot of what the client names, or of everything it watches."""
        named = protocol.call_id(content.get("call"))
        board = content.get("board")
        wants_board = board is True or (board is None and named is None)
        if wants_board and self.watching_board:
            await self._send_board()
        for call_id in sorted(self.watching_calls):
            if named is None or named == call_id:
                await self._subscribe_call(call_id)

    def _session_key(self) -> str | None:
        key: str | None = self.scope.get("session_key")
        return key

    async def _action(self, content: dict[str, Any]) -> None:
        request = protocol.action_request(content)
        try:
            acted = await in_thread(
                _act,
                self._session_key(),
                content,
                request,
                _client_ip(self.scope),
                self.actions,
            )
        except Exception:
            # A fault of ours (logged); the page still gets its answer for this
            # request id, and the socket goes on.
            logger.exception(
                "action %s failed", request.kind, extra={"call_id": request.call}
            )
            await self._send(
                request.refusal(
                    "server_error",
                    "Callbot could not take this request because of a fault on "
                    "the server; it has been logged.",
                )
            )
            await self._strike()
            return
        if acted.user is None:
            await self._close(CLOSE_SIGNED_OUT)
            return
        self.user = acted.user
        refused = acted.refused
        if refused is not None:
            if not acted.unoffered:
                logger.info(
                    "refused %s from %s: %s",
                    request.kind,
                    self.user.get_username(),
                    refused.code,
                    extra={"call_id": request.call},
                )
            await self._send(request.refusal(refused.code, refused.message))
            if acted.unoffered or refused.code == "rate_limited":
                await self._strike()
            return
        await self._send(
            {
                "type": "action.accepted",
                "request_id": request.request_id,
                "kind": request.kind,
                "call": request.call,
                "actions": acted.shapes,
            }
        )
        if acted.shapes:
            await self.publish_act(request, acted.shapes)

    # --- from the channel layer ---------------------------------------------------

    async def call_delta(self, event: dict[str, Any]) -> None:
        if event.get("call_id") in self.watching_calls:
            await self._send(event)

    async def session_ended(self, event: dict[str, Any]) -> None:
        """The user signed out (``signals.py``): the page goes to the sign-in page."""
        await self._close(CLOSE_SIGNED_OUT)

    async def calls_delta(self, event: dict[str, Any]) -> None:
        if hops.ENABLED:
            key = (str(event["call"].get("id")),)
            hops.mark("consumer", key)
        if self.watching_board:
            await self._send(event)
        if hops.ENABLED:
            hops.mark("sent", key)

    async def calls_notice(self, event: dict[str, Any]) -> None:
        """A notice for people watching the board (the bot dropped from a call)."""
        if self.watching_board:
            await self._send(event)
