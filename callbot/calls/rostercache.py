"""The participant rows of large calls as this process last committed them, so
that the next full roster of such a call need not read its present rows again.

A full roster of a meeting of a thousand people with one change is decided by
the stored rows: which of them took the entry sent for them last (their entry
digest), who is present and is not named any more. Reading that back for all
thousand rows is most of what the batch costs beyond a small meeting's. So
once a batch that loaded every present row of a call commits (a full roster's
batch), the rows' keys, presence, sequences and entry digests are kept here,
under the call's stamp as written by that batch; the next batch, having locked
the call, finds them again only if the stamp it reads is the same
(``recall``). Only ingest writes participant rows (``workset.save_work``), and
every batch it applies to a call stores an event for it (``event_count``) or
bumps its version, with its time (``updated_at``): a batch of this process
or any other since then is a different stamp, and the rows are read from
the database as before. A rolled-back batch keeps nothing: rows are kept
after commit only. (A row edited in the admin is not seen here until the
call's next batch; an entry's digest never saw such an edit either.)

What is kept is what ``storedrows`` calls light rows: enough to skip an entry
(``CallWork.glance``) and to tell who is present; a row that is to be built
is read whole first (``CallWork.read_whole``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from django.db import transaction

from callbot.calls.callwork import CallWork
from callbot.calls.models import Call
from callbot.calls.states import CallState
from callbot.calls.storedrows import NAMES, light_row, slim

# Calls whose rows are kept: a full roster of fewer people costs little to
# read, and a process seldom hosts more large meetings at once than this.
MIN_ROWS = 100
MAX_CALLS = 32

Stamp = tuple[Any, ...]
Rows = dict[str, tuple[Any, ...]]

_kept: OrderedDict[int, tuple[Stamp, Rows]] = OrderedDict()
_lock = threading.Lock()


def stamp(call: Call) -> Stamp:
    """What changes in the call's row whenever ingest writes its participants."""
    return (call.graph_key, call.event_count, call.version, call.updated_at)


def recall(call: Call) -> Rows | None:
    """The call's rows kept under the stamp ``call`` (locked, as read) has; None
    when none are, or under another stamp. Every row present at that stamp is
    among them (in ``storedrows.NAMES`` order, light)."""
    kept = _kept.get(call.pk)
    if kept is None or kept[0] != stamp(call):
        return None
    return kept[1]


def keep_on_commit(items: list[CallWork]) -> None:
    """Keep, once the caller's transaction commits, the rows of each call of
    ``items`` whose every present row the batch loaded, under the stamp it
    writes (``save_work`` has run: ``item.call`` is as written)."""
    kept = [
        (item.call.pk, stamp(item.call), rows)
        for item in items
        if (rows := _rows(item))
    ]
    if kept:
        transaction.on_commit(lambda: _keep(kept))


def forget() -> None:
    """Keep nothing (tests: a rolled-back database can give its ids again)."""
    with _lock:
        _kept.clear()


def _rows(item: CallWork) -> Rows | None:
    """Every loaded row of ``item``'s call as it now stands, light; None unless
    the batch loaded every present row and there are ``MIN_ROWS`` of them."""
    if not item.present_loaded or item.call.state == CallState.TERMINATED:
        return None
    stored = item.stored
    if stored is not None and stored.layout.names != NAMES:
        return None
    if (len(stored.raw) if stored else 0) + len(item.rows) < MIN_ROWS:
        return None
    rows: Rows = {}
    if stored is not None:
        rows.update(stored.raw)
        for key in rows.keys() - stored.light:
            rows[key] = slim(rows[key])
    for key, p in item.rows.items():
        rows[key] = light_row(p)
    return rows


def _keep(kept: list[tuple[int, Stamp, Rows]]) -> None:
    with _lock:
        for call_id, call_stamp, rows in kept:
            _kept[call_id] = (call_stamp, rows)
            _kept.move_to_end(call_id)
        while len(_kept) > MAX_CALLS:
            _kept.popitem(last=False)
