"""The webhook's inbox: answer first, apply after (``WEBHOOK_APPLY = "deferred"``).

The webhook verifies a batch's token, parses it, stores its body as one
``InboxBatch`` row (one INSERT) and answers 202; applying it (about ten
statements and the roster work, ``ingest.py``) happens here, off the request.

Guarantees, and how they hold:

* **Nothing answered 202 is lost.** The row is committed before the answer. It
  is deleted after the transaction that applies it commits and its after-commit
  work (live deltas, tasks) is sent, so a process that dies before then leaves
  it for the next applier: another web process's (on its timer), the restarted
  process's, or beat's ``apply_webhook_inbox`` (every
  ``WEBHOOK_INBOX_SWEEP_SECONDS``).
* **Exactly once.** A batch applied twice (its applier died between the commit
  and the delete) is all duplicates the second time, by ingest's digests, as a
  redelivery from Graph is; and, as for such a redelivery, what its calls still
  wait on (a ringing call's decision) is registered again (``redelivery.py``).
* **Arrival order, per call.** One applier at a time per database applies rows
  in id order, except that a row bringing a new call goes before earlier rows
  of the same page that name none of its calls (``inboxorder.py``: a ringing
  call is not kept behind other calls' backlog). A batch is stored before it is
  answered, so a batch Graph sent after an earlier one of the same call was
  answered has the larger id and is applied after it. (Two batches in flight
  at once have no order to keep: which one commits its row first is a race, as
  it was when both were applied inline.)
  "One at a time" is a process-wide lock plus one per database: a session-level
  advisory lock on PostgreSQL (released by the server if the process dies), an
  ``flock`` on a file beside the SQLite database. An applier that finds the lock
  held leaves: the holder checks again for rows after releasing it, so a row
  committed while it was draining is not stranded.
* **A poison batch does not block the rest.** A batch whose application raises
  anything but an outage is rolled back and its notifications quarantined
  (``failed``, ``ingest.quarantine_batch``); if even that fails the row keeps the
  error and is skipped. An outage stops the drain with the row in place.

Rows waiting behind one another are applied ``WEBHOOK_INBOX_GROUP`` at a time,
as one batch (``ingest.apply_deliveries``). On SQLite the process's writers (the
request's store and the applier thread) take turns on a gate that lets stores go
first (``inboxlocks.py``), so an answer waits for at most the group being applied rather than
sleeping in SQLite's busy handler; and an applier thread starts each group
when its turn beside the webhook's requests comes (``arrivals.py``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from callbot.calls import (
    arrivals,
    inboxlocks,
    inboxorder,
    inboxrouter,
    later,
    lockedrows,
)
from callbot.calls.ingest import (
    Delivery,
    IngestResult,
    apply_deliveries,
    quarantine_batch,
)
from callbot.calls.models import InboxBatch
from callbot.calls.quarantine import is_outage
from callbot.graph.notifications import (
    MalformedNotification,
    Notification,
    parse_notification_batch,
)
from callbot.observability import hops, metrics

logger = logging.getLogger(__name__)


def deferred() -> bool:
    return bool(settings.WEBHOOK_APPLY == "deferred")


# --- storing (the request) ------------------------------------------------------------


def store(body: bytes, *, message_id: str, tenant_id: str, notifications: int) -> int:
    """Keep a verified, parsed batch as one row, committed; its id."""
    with inboxlocks.gate.storing():
        row = InboxBatch.objects.create(
            body=body,
            message_id=message_id,
            tenant_id=tenant_id[:64],
            notifications=notifications,
            received_at=timezone.now(),
        )
    arrivals.stored()
    return row.pk


def pending() -> int:
    """Stored batches waiting to be applied (skipped poison rows not counted)."""
    return InboxBatch.objects.filter(error="").count()


# --- applying -------------------------------------------------------------------------


@dataclass
class Drained:
    """What one drain did: rows applied and set aside, and what became of their
    notifications (as inline mode's answer says it); ``held`` is False when
    another applier had the lock."""

    held: bool = True
    applied: int = 0
    set_aside: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    # Rows applied and their after-commit work sent, not deleted yet.
    done: list[int] = field(default_factory=list, repr=False)

    def count(self, result: IngestResult) -> None:
        self.stored += result.stored
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined


def drain(
    stored_since: Callable[[], bool] | None = None, *, yielding: bool = False
) -> Drained:
    """Apply every pending row in id order, if no other applier is at it.

    Raises an outage (the rows stay). After releasing the lock it looks again
    for rows and drains those too: an applier that found the lock held while
    this one ran left them to it. ``stored_since()``: whether a store woke the
    applier since it last asked (``_drain_held`` reads its rows at once).
    ``yielding`` (the applier thread's): each group waits for its turn beside
    the process's webhook requests (``arrivals.wait_turn``)."""
    total = Drained(held=False)
    while True:
        with inboxlocks.exclusive() as held:
            if not held:
                return total
            total.held = True
            _drain_held(total, stored_since, yielding)
        if not InboxBatch.objects.filter(error="").exists():
            return total


def _drain_held(
    total: Drained,
    stored_since: Callable[[], bool] | None,
    yielding: bool = False,
) -> None:
    """Apply the pending rows in id order, ``WEBHOOK_INBOX_GROUP`` at a time,
    each group read whole in one query. A group shorter than that was the last:
    no query to find none left (a row committed since is found by ``drain``'s
    look after the lock is released), so one stored batch costs the drain one
    read before it is applied, not an id query and then a read. Unless a store
    woke the applier meanwhile (``stored_since``): its row is read at once, not
    after the delete, unlock, look, health check and lock (a ring waited)."""
    with later.holding():
        _drain_pages(total, stored_since, yielding)


def _drain_pages(
    total: Drained,
    stored_since: Callable[[], bool] | None,
    yielding: bool,
) -> None:
    """``_drain_held``'s pages. The after-commit work nobody waits on
    (``later``) runs once no store has woken the applier, item by item, and
    stops for one that does: a ring stored meanwhile is read, applied and
    published before it. The rows go after their work has run."""
    after = 0
    group = max(1, int(settings.WEBHOOK_INBOX_GROUP))
    while True:
        if yielding:
            arrivals.wait_turn(group)
        rows = _page(after, group)
        if hops.ENABLED:
            for row in rows:
                hops.mark("read", hops.call_keys(row.body))
        if rows:
            _apply_page(rows, total)
            after = rows[-1].pk
        woken = bool(rows) and stored_since is not None and stored_since()
        if not woken:
            woken = not later.run_held(stored_since)
        if not woken or len(total.done) >= group:
            later.run_held()
            _delete_done(total)
        if len(rows) < group and not woken:
            return


def _page(after: int, group: int) -> list[InboxBatch]:
    """The next ``group`` pending rows after id ``after``, in id order. Compiled
    once (``lockedrows``): each stored batch's drain reads a page."""
    return lockedrows.rows(
        f"inbox.page.{group}",
        lambda pk: InboxBatch.objects.filter(error="", pk__gt=pk).order_by("pk")[
            :group
        ],
        after,
        using=router.db_for_read(InboxBatch),
    )


def _delete_done(total: Drained) -> None:
    """Delete the rows whose application committed and whose after-commit work
    was sent (``_delete_after_its_work``)."""
    if total.done:
        with inboxlocks.gate.applying():
            _delete_rows(total.done)
        total.done.clear()


def _delete_rows(pks: list[int]) -> None:
    """``InboxBatch.objects.filter(pk__in=pks).delete()`` as one plain DELETE,
    without the collector's transaction around it (nothing refers to a row and
    nothing listens for its deletion; one statement is atomic by itself): each
    applied batch is deleted, four per answered call."""
    using = router.db_for_write(InboxBatch)
    with connections[using].cursor() as cursor:
        cursor.execute(_delete_sql(len(pks), using), pks)


@functools.lru_cache(maxsize=64)
def _delete_sql(count: int, using: str) -> str:
    quote = connections[using].ops.quote_name
    table = quote(InboxBatch._meta.db_table)
    pk = quote(InboxBatch._meta.pk.column)
    marks = ", ".join(["%s"] * count)
    # Only our own quoted names and placeholders are interpolated.
    return f"DELETE FROM {table} WHERE {pk} IN ({marks})"  # noqa: S608


def _apply_page(rows: list[InboxBatch], total: Drained) -> None:
    """Apply a page of rows read in id order: first the ones that bring a new
    call and name no call of an earlier row of the page, as a group of their
    own, then the rest (``inboxorder.ring_first``: a ringing call is committed
    and published before other calls' backlog, each call's batches still in
    arrival order). A row that cannot be read is left to ``_apply_one``, which
    sets it aside, and no row after it goes first."""
    parsed: dict[int, Delivery] = {}
    for row in rows:
        with contextlib.suppress(Exception):
            parsed[row.pk] = _delivery(row)
    first, rest = inboxorder.ring_first(
        [
            (row, parsed[row.pk].notifications if row.pk in parsed else None)
            for row in rows
        ]
    )
    for part in (first, rest):
        if part:
            _apply_group(part, total, parsed)


def _apply_group(
    rows: list[InboxBatch], total: Drained, parsed: dict[int, Delivery]
) -> None:
    """Apply consecutive rows as one (``ingest.apply_deliveries``) and delete
    them, in one transaction; if that fails for anything but an outage, apply
    them one at a time, so only the batch at fault is set aside. ``parsed``:
    the rows' batches read already."""
    with _marked(rows):
        _apply_rows(rows, total, parsed)


@contextlib.contextmanager
def _marked(rows: list[InboxBatch]) -> Iterator[None]:
    """With ``CALLBOT_HOP_LOG`` set, the rows' calls named for the publish their
    commit makes (``hops.applying``), and ``applied`` marked once their
    after-commit work is done."""
    if not hops.ENABLED:
        yield
        return
    keys = tuple(key for row in rows for key in hops.call_keys(row.body))
    token = hops.applying.set(keys)
    try:
        yield
    finally:
        hops.applying.reset(token)
        hops.mark("applied", keys)


def _apply_rows(
    rows: list[InboxBatch], total: Drained, parsed: dict[int, Delivery]
) -> None:
    if len(rows) > 1:
        started = time.perf_counter()
        try:
            deliveries = [parsed.get(row.pk) or _delivery(row) for row in rows]
            outermost = transaction.get_autocommit()
            with inboxlocks.gate.applying(), transaction.atomic():
                result = apply_deliveries(deliveries)
                _delete_after_its_work([row.pk for row in rows], outermost, total)
        except Exception as exc:
            if is_outage(exc):
                raise
            logger.warning(
                "stored batches %d-%d failed to apply together (%s); "
                "applying them one at a time",
                rows[0].pk,
                rows[-1].pk,
                type(exc).__name__,
            )
        else:
            total.applied += len(rows)
            total.count(result)
            metrics.batch_ingested(
                sum(len(d.notifications) for d in deliveries),
                time.perf_counter() - started,
            )
            return
    for row in rows:
        _apply_one(row, total, parsed.get(row.pk))


def _delete_after_its_work(pks: list[int], outermost: bool, total: Drained) -> None:
    """Delete applied rows once their after-commit work is sent: registered last,
    this runs after the live deltas and the tasks their application registered.

    Deleting them in the applying transaction would lose that work if the
    applier died between the commit and the sends (SIGKILL, or Redis stalled and
    the process killed): the batch was answered 202 long before, so nothing
    would deliver it again, and a call rung then would ring out undecided. A row
    left this way is applied again by the next drain, as all duplicates, and
    ingest registers again what its calls still wait on (``redelivery.py``), as
    for a batch Graph delivers again to an inline webhook that died before its
    answer. Inside a caller's transaction (``outermost`` False: a test's) there
    is no commit of ours to wait for; the rows go with the rest.

    After a commit they are only noted (``total.done``), and ``_drain_held``
    deletes them before the lock's release or a page no store woke it for: a
    ring stored meanwhile is applied first, not after an autocommit ``DELETE``
    and its WAL flush (3-40 ms under load)."""
    if outermost:
        transaction.on_commit(lambda: total.done.extend(pks))
    else:
        InboxBatch.objects.filter(pk__in=pks).delete()


def _delivery(row: InboxBatch) -> Delivery:
    return Delivery(
        parse_notification_batch(bytes(row.body)),
        row.message_id,
        row.tenant_id,
        row.received_at,
    )


def _apply_one(
    row: InboxBatch, total: Drained, delivery: Delivery | None = None
) -> None:
    """Apply one row the drain read (it holds the lock: no other applier can
    have applied it since), and its batch if parsed already, counting it in
    ``total`` as applied or set aside (quarantined, or marked). Raises an
    outage, leaving the row."""
    pk = row.pk
    started = time.perf_counter()
    try:
        delivery = delivery or _delivery(row)
    except Exception as exc:  # a body this version no longer reads
        _mark(row, f"{type(exc).__name__}: {exc}")
        total.set_aside += 1
        return
    try:
        outermost = transaction.get_autocommit()
        with inboxlocks.gate.applying(), transaction.atomic():
            result = apply_deliveries([delivery])
            _delete_after_its_work([pk], outermost, total)
    except Exception as exc:
        if is_outage(exc):
            raise
        logger.exception(
            "stored batch %d failed to apply; quarantining it",
            pk,
            extra={"message_id": row.message_id},
        )
        quarantined = _set_aside(
            row, delivery.notifications, f"{type(exc).__name__}: {exc}"
        )
        total.set_aside += 1
        total.quarantined += quarantined
        total.duplicates += len(delivery.notifications) - quarantined
        return
    metrics.batch_ingested(len(delivery.notifications), time.perf_counter() - started)
    total.applied += 1
    total.count(result)


def _set_aside(
    row: InboxBatch,
    notifications: Sequence[Notification | MalformedNotification],
    error: str,
) -> int:
    """Quarantine the notifications of a batch that failed and delete its row
    (how many were quarantined: the others were stored or quarantined before);
    if that fails too, mark the row so the drain skips it (all of them: the row
    keeps them)."""
    try:
        with inboxlocks.gate.applying(), transaction.atomic():
            kept = quarantine_batch(
                notifications,
                error,
                message_id=row.message_id,
                tenant_id=row.tenant_id,
                received_at=row.received_at,
            )
            if not inboxrouter.separate():
                InboxBatch.objects.filter(pk=row.pk).delete()
        if inboxrouter.separate():
            # Another file: deleted once the quarantine committed, not before
            # (a crash between applies it again, as all duplicates).
            InboxBatch.objects.filter(pk=row.pk).delete()
    except Exception as exc:
        if is_outage(exc):
            raise
        _mark(row, f"{error}; quarantining it failed: {type(exc).__name__}: {exc}")
        return len(notifications)  # all kept, in the row
    return kept


def _mark(row: InboxBatch, error: str) -> None:
    logger.error("stored batch %d set aside: %s", row.pk, error[:300])
    with inboxlocks.gate.applying():
        InboxBatch.objects.filter(pk=row.pk).update(error=error[:10_000] or "error")
