"""A browser-side client of the live socket (``ws/live/``), without a browser.

It behaves like ``static/dashboard/live.js`` and the pages using it: it signs in
with the session cookie, sends its subscriptions on every (re)connect, reconnects
with the same backoff after the socket drops, applies ``call.delta`` messages on
top of the version it holds and asks for a resync when it sees a gap. What it knows
of each watched call (version, roster, actions) is what a page would show.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from tests.support.emulator import wait_until

BACKOFF_SECONDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


@dataclass
class CallView:
    """One call as the page holds it."""

    version: int = -1
    call: dict[str, Any] = field(default_factory=dict)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)


class LiveClient:
    """One tab's live socket, run by a background thread."""

    def __init__(self, url: str, cookies: dict[str, str], origin: str) -> None:
        self.url = url
        self.headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "Origin": origin,
        }
        self.subscriptions: list[dict[str, Any]] = []
        self.calls: dict[int, CallView] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self._pending: set[str] = set()
        self.messages: list[dict[str, Any]] = []
        # How often the socket opened, and how often it dropped.
        self.connects = 0
        self.drops = 0
        self.resyncs = 0
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._ws: ClientConnection | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    # --- what a page does ---------------------------------------------------------

    def start(self) -> LiveClient:
        self._thread.start()
        wait_until(lambda: self.connects > 0, timeout=10)
        return self

    def subscribe(self, **what: Any) -> None:
        with self._lock:
            self.subscriptions.append(what)
        self._send({"type": "subscribe", **what})

    def watch_call(self, call_id: int, timeout: float = 10) -> CallView:
        self.subscribe(call=call_id)
        return wait_until(lambda: self._view_if_loaded(call_id), timeout=timeout)

    def _view_if_loaded(self, call_id: int) -> CallView | None:
        with self._lock:
            view = self.calls.get(call_id)
            return view if view is not None and view.version >= 0 else None

    def act(
        self,
        kind: str,
        call: int,
        participant: str = "",
        params: dict[str, Any] | None = None,
        timeout: float = 10,
    ) -> dict[str, Any]:
        """Send an action; the server's answer (``action.accepted``/``refused``)."""
        request_id = f"r{next(self._ids)}"
        with self._lock:
            self._pending.add(request_id)
        sent = self._send(
            {
                "type": "action",
                "request_id": request_id,
                "kind": kind,
                "call": call,
                "participant": participant,
                "params": params or {},
            }
        )
        if not sent:
            with self._lock:
                self._pending.discard(request_id)
            return {"type": "action.refused", "code": "disconnected"}
        answer: dict[str, Any] = wait_until(
            lambda: self.answers.get(request_id), timeout=timeout
        )
        return answer

    def act_until_accepted(
        self, kind: str, call: int, participant: str = "", timeout: float = 15
    ) -> int:
        """Ask for an action as a person would, again while the page is not
        connected (it was refused as ``disconnected``); the action's id."""

        def ask() -> int | None:
            answer = self.act(kind, call, participant)
            if answer["type"] == "action.accepted":
                action_id: int = answer["actions"][0]["id"]
                return action_id
            if answer.get("code") != "disconnected":
                raise AssertionError(f"{kind} refused: {answer}")
            return None

        found: int = wait_until(ask, timeout=timeout, interval=0.1)
        return found

    def action(self, call_id: int, action_id: int) -> dict[str, Any] | None:
        with self._lock:
            view = self.calls.get(call_id)
            return None if view is None else view.actions.get(action_id)

    def wait(self, predicate: Callable[[], Any], timeout: float = 10) -> Any:
        return wait_until(predicate, timeout=timeout, interval=0.02)

    def close(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            ws.close()
        self._thread.join(timeout=5)

    # --- the socket -------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            ws.send(json.dumps(message))
        except ConnectionClosed:
            return False
        return True

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            opened = False
            try:
                with connect(
                    self.url, additional_headers=self.headers, open_timeout=5
                ) as ws:
                    opened = True
                    self._session(ws)
            except (OSError, InvalidHandshake, TimeoutError):
                if opened:  # the socket broke after it opened: _session has seen to it
                    continue
                time.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
                attempt += 1
                continue
            if not self._stopping.is_set():
                time.sleep(BACKOFF_SECONDS[0])
                attempt = 1

    def _session(self, ws: ClientConnection) -> None:
        """One open socket: subscribe, read until it closes, then count the drop."""
        with self._lock:
            self._ws = ws
            self.connects += 1
            subscriptions = list(self.subscriptions)
        for sub in subscriptions:
            self._send({"type": "subscribe", **sub})
        try:
            for raw in ws:
                self._receive(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._ws = None
                if not self._stopping.is_set():
                    self.drops += 1
                # As the page does: an action sent but not answered is reported
                # as not done; the person may ask again.
                for request_id in self._pending:
                    self.answers[request_id] = {
                        "type": "action.refused",
                        "request_id": request_id,
                        "code": "disconnected",
                    }
                self._pending.clear()

    def _receive(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)
            kind = message.get("type")
            if kind in ("action.accepted", "action.refused"):
                request_id = str(message.get("request_id"))
                self._pending.discard(request_id)
                self.answers[request_id] = message
            elif kind == "call.snapshot":
                self.calls[int(message["call_id"])] = CallView(
                    version=int(message["version"]),
                    call=dict(message["call"]),
                    participants={p["id"]: p for p in message["participants"]},
                    actions={a["id"]: a for a in message["actions"]},
                )
            elif kind == "call.delta":
                self._apply(message)

    def _apply(self, delta: dict[str, Any]) -> None:
        call_id = int(delta["call_id"])
        view = self.calls.get(call_id)
        if view is None or view.version < 0:
            return
        if int(delta["version"]) <= view.version:
            return  # already in the snapshot
        if int(delta["base_version"]) != view.version:
            # A gap: something was missed. Ask for the call afresh.
            self.resyncs += 1
            self._send({"type": "resync", "call": call_id})
            return
        view.version = int(delta["version"])
        view.call.update(delta.get("call") or {})
        for p in delta.get("participants") or []:
            view.participants[p["id"]] = p
        for gone in delta.get("left") or []:
            view.participants.pop(gone, None)
        for a in delta.get("actions") or []:
            view.actions[int(a["id"])] = a
