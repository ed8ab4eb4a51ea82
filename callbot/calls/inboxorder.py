"""Which stored webhook batches the inbox's applier takes first (``inbox.py``).

A supervisor waits on a ringing call's row; nobody waits on the other calls'
batches stored before it (a call's end, a roster change, another call's answer
flow). With one applier taking rows in id order, a ring stored behind them was
applied, committed and published only after all of them, as one group: under
the bench's load that was 30-60 ms after its own store (``bench/README.md``,
"A ring before another call's backlog").

``ring_first`` splits a page of stored batches into the ones that create a call
and may go first, and the rest, each in arrival order. A batch goes first only
if no batch before it in the page names one of its calls, so each call's
batches are still applied in the order they arrived; a batch whose calls cannot
be told (it cannot be read, or a notification of it is malformed or names no
call) is passed by none. Batches of different calls have no order between them
to keep: Graph sends them independently, and the live board orders each call's
rows by that call's own versions.

Imports nothing of Callbot's but the notification types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from callbot.graph.notifications import MalformedNotification, Notification

R = TypeVar("R")

Notifications = Sequence[Notification | MalformedNotification]


def creates_call(notifications: Notifications) -> bool:
    """Whether a batch brings a call Callbot has not been told of (an incoming
    call ringing, or an outgoing one Graph reports created)."""
    return any(
        isinstance(n, Notification)
        and n.change_type == "created"
        and n.call is not None
        for n in notifications
    )


def call_keys(notifications: Notifications) -> frozenset[str] | None:
    """The calls a batch names, or None when that cannot be told for all of it."""
    keys: set[str] = set()
    for n in notifications:
        if not isinstance(n, Notification) or not n.call_key:
            return None
        keys.add(n.call_key)
    return frozenset(keys)


def ring_first(
    batches: Sequence[tuple[R, Notifications | None]],
) -> tuple[list[R], list[R]]:
    """``(first, rest)``: the batches that create a call and name no call of an
    earlier batch still waiting in ``batches``, then every other one, each list
    in the order given. ``None`` for a batch's notifications: it could not be
    read, and nothing after it goes before it."""
    first: list[R] = []
    rest: list[R] = []
    named: set[str] = set()
    unknown_before = False
    for batch, notifications in batches:
        keys = None if notifications is None else call_keys(notifications)
        if (
            not unknown_before
            and keys is not None
            and notifications is not None
            and creates_call(notifications)
            and named.isdisjoint(keys)
        ):
            first.append(batch)
            continue
        rest.append(batch)
        if keys is None:
            unknown_before = True
        else:
            named.update(keys)
    return first, rest
