"""Celery tasks of the calls app. Thin: each takes ids and calls one function.

Tasks are acks-late (settings): a worker killed mid-task leaves the message to be
delivered again, and ``perform.perform`` makes a repeated delivery harmless.
Names are explicit (and listed in ``enqueue.py`` for the domain's use) so queued
messages survive a refactor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from celery import shared_task

from callbot.calls import (
    alerts,
    app_permissions,
    auditseal,
    enqueue,
    inbox,
    kinds,
    lifecycle,
    meetings,
    perform,
    retention,
    services,
    upkeep,
    workerhealth,
)
from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, AuditCheckpoint
from callbot.graph.errors import GraphError

logger = logging.getLogger(__name__)


@shared_task(name=enqueue.PERFORM_ACTION, bind=True, max_retries=None)
def perform_action(self: Any, action_id: int) -> None:
    """Send one queued Action to Graph (see ``perform.perform``); retry on throttling
    or outages after the countdown Graph asked for."""
    retry = perform.perform(action_id)
    if retry is not None and not self.request.is_eager:
        retry = _wait_for_earlier(action_id, retry)
    if retry is not None:
        if self.request.is_eager:
            # In-process (embedded default, tests): no broker to hold a countdown.
            # The action stays queued; ``requeue_stale_actions`` sends it again.
            logger.info(
                "action %s left queued for the sweep: %s", action_id, retry.reason
            )
            return
        raise self.retry(countdown=retry.countdown)


# How often a worker looks again, in its own thread, before it hands an action
# queued behind an earlier one back to the broker.
IN_ORDER_ROUNDS = 4


def _wait_for_earlier(
    action_id: int, retry: perform.RetryLater
) -> perform.RetryLater | None:
    """Attempt again after short sleeps while the action only waits for an earlier
    one of its call: an IVR step asks for two or three actions at once, and the
    worker that took the first is usually done within tens of milliseconds. A
    broker retry (a new message, a timer, a second delivery) cost more CPU than
    the wait and answered later. Returns the last attempt's ``RetryLater``, or
    None once the action was performed."""
    last: perform.RetryLater | None = retry
    rounds = 0
    while last is not None and last.in_order and rounds < IN_ORDER_ROUNDS:
        time.sleep(last.countdown)
        rounds += 1
        # One read while the earlier action is still queued; the claim only
        # once it is not.
        if not perform.waits_for_earlier(action_id):
            last = perform.perform(action_id)
    return last


def _held_behind_earlier(action: Action, rounds_left: int) -> bool:
    """Whether an action stored claimed still waits, after up to ``rounds_left``
    short sleeps, for an earlier queued action of its call (one read each look;
    the claim it holds keeps the sweep away meanwhile)."""
    rounds = 0
    while perform.waits_for_earlier(action.pk):
        if rounds == rounds_left:
            return True
        time.sleep(0.05)
        rounds += 1
    return False


def perform_kept(action: Action, *, broker: bool = True) -> None:
    """Perform, in this worker thread, an action a task of its own just queued
    (``enqueue.performing_here``): the call policy's answer, reject or redirect,
    which Graph must have within the ~15 s a call rings, or a flow step's.

    An action stored claimed (``lifecycle.claim_new``) is attempted without a
    claim of its own: an answer, reject or redirect at once; a step's action
    once no earlier action of its call is still queued (one read per look, as
    ``perform_action`` waits here, then its claim given back uncounted and the
    action sent to the broker). Any other is claimed as ``perform_action`` would.
    One that must wait (a retryable Graph error, an earlier action) goes to the
    broker with its countdown; if the attempt raises, the action is given back
    and enqueued. Never raises.

    ``broker=False`` (in-process tasks: a send would run the task at once, in
    this thread, which may be a web process's): what must wait is left queued
    for the sweep instead, without waiting here, as an eager ``perform_action``
    leaves it.
    """
    try:
        if action.claimed_until is None:
            retry = perform.perform(action.pk)
            if retry is not None:
                retry = _wait_for_earlier(action.pk, retry)
        elif action.kind in kinds.RINGING_KINDS or not _held_behind_earlier(
            action, IN_ORDER_ROUNDS if broker else 0
        ):
            retry = perform.perform_claimed(action)
        else:
            lifecycle.release_action(action.pk, attempted=False)
            retry = perform.RetryLater(
                countdown=0.05, reason="an earlier action is queued", in_order=True
            )
    except Exception:
        logger.exception(
            "action %s: performing it here failed; handing it to the broker",
            action.pk,
            extra={"action_id": action.pk},
        )
        if broker:
            enqueue.hand_over(action)
        else:
            lifecycle.release_action(action.pk)
        return
    if retry is None:
        return
    if broker:
        enqueue.send(enqueue.PERFORM_ACTION, action.pk, countdown=retry.countdown)
    else:
        logger.info("action %s left queued for the sweep: %s", action.pk, retry.reason)


@shared_task(name="callbot.calls.send_keep_alives")
def send_keep_alives() -> int:
    """Fan out a keepAlive to every connected call not kept alive recently.

    Scheduled by beat every ``KEEP_ALIVE_INTERVAL_SECONDS`` (well within the
    contract's 45 minutes); returns how many were sent.
    """
    ids = upkeep.calls_due_keep_alive()
    for call_id in ids:
        send_keep_alive.delay(call_id)
    return len(ids)


@shared_task(
    name=enqueue.SEND_KEEP_ALIVE,
    autoretry_for=(GraphError,),
    retry_backoff=True,
    max_retries=3,
)
def send_keep_alive(call_id: int) -> str:
    """POST keepAlive for one call; a 404 means Graph ended it: close it here."""
    return upkeep.keep_alive(call_id)


@shared_task(name=enqueue.RECONCILE_SILENT_CALLS)
def reconcile_silent_calls(silence_seconds: float | None = None) -> dict[str, int]:
    """GET every live call silent for too long; close the ones Graph forgot.

    Beat runs it every minute for calls silent for ``RECONCILE_SILENCE_SECONDS``;
    a worker that starts runs it for every live call (``silence_seconds=0``), so
    calls that ended while nobody listened leave the board at once.
    """
    found: dict[str, int] = {}
    for call_id in upkeep.silent_call_ids(silence_seconds=silence_seconds):
        try:
            outcome = upkeep.reconcile_call(call_id)
        except GraphError as exc:
            logger.warning("reconciling call %s failed: %s", call_id, exc)
            outcome = "error"
        found[outcome] = found.get(outcome, 0) + 1
    return found


@shared_task(name="callbot.calls.requeue_stale_actions")
def requeue_stale_actions() -> int:
    """Send again actions left queued: the broker was down at enqueue time, or a
    retry was left for this sweep. A claimed action's lease keeps it from a second
    worker while the first still holds it."""
    ids = upkeep.stale_action_ids()
    for action_id in ids:
        perform_action.delay(action_id)
    return len(ids)


@shared_task(name="callbot.calls.apply_webhook_inbox")
def apply_webhook_inbox() -> dict[str, int]:
    """Apply stored webhook batches no applier took (their web process died
    between storing and applying, or the database was away); beat runs it every
    ``WEBHOOK_INBOX_SWEEP_SECONDS``. One query when there are none; nothing
    while another applier holds the lock (it drains them). An outage is left to
    the next tick."""
    drained = inbox.drain()
    return {"applied": drained.applied, "set_aside": drained.set_aside}


@shared_task(name="callbot.calls.evaluate_alerts")
def evaluate_alerts() -> dict[str, int]:
    """Raise and clear alerts whose rules depend on time (``alerts.evaluate_alerts``,
    and the workers' rule, ``workerhealth.note``); beat runs it every
    ``ALERT_SWEEP_SECONDS``."""
    found = alerts.evaluate_alerts()
    workerhealth.note()
    return found


@shared_task(name="callbot.calls.worker_heartbeat", bind=True)
def worker_heartbeat(self: Any) -> None:
    """Stamp this worker's heartbeat (``workerhealth.heartbeat``); beat sends it
    every ``WORKER_HEARTBEAT_SECONDS``, and each worker runs it once as it starts."""
    workerhealth.heartbeat(self.request.hostname or workerhealth.IN_PROCESS)


@shared_task(name="callbot.calls.read_app_roles")
def read_app_roles() -> list[str] | None:
    """Read the app token's roles and keep them for the pages (``held_roles``);
    None when the token could not be read (the roles kept before stay until they
    expire)."""
    check = app_permissions.check_app()
    if check.grant is None:
        logger.warning("app roles not read: %s", check.error)
        return None
    return sorted(check.grant.roles)


@shared_task(name="callbot.calls.join_due_meetings")
def join_due_meetings() -> int:
    """Join meetings whose scheduled start has come; leave those that ended."""
    joined = 0
    for meeting_id in meetings.due_meetings():
        try:
            services.request_action(
                Action.Kind.JOIN_MEETING, actor=None, params={"meeting_id": meeting_id}
            )
            joined += 1
        except ActionRefusedError as refused:
            logger.warning(
                "scheduled join of meeting %s refused: %s", meeting_id, refused
            )
    for call_id in meetings.meeting_calls_to_leave():
        try:
            services.request_action(Action.Kind.HANG_UP, actor=None, call=call_id)
        except ActionRefusedError as refused:
            logger.info("leaving meeting call %s refused: %s", call_id, refused)
    return joined


@shared_task(
    name=enqueue.FETCH_RECORDING,
    autoretry_for=(GraphError,),
    retry_backoff=True,
    max_retries=5,
)
def fetch_recording(action_id: int, location: str, access_token: str) -> str:
    """Download a finished ``recordResponse`` and keep it (contract §6.10: fetch
    at once; Graph discards it soon after the call ends). A 404 means it is gone."""
    return upkeep.fetch_recording(action_id, location, access_token)


@shared_task(name="callbot.calls.seal_audit_chain")
def seal_audit_chain() -> int | None:
    """Sign a checkpoint of the audit chain's head if it moved since the last one
    (beat, every ``AUDIT_CHECKPOINT_MINUTES``); the sequence sealed, or None."""
    checkpoint = auditseal.seal(AuditCheckpoint.Reason.PERIODIC)
    return checkpoint.sequence if checkpoint is not None else None


@shared_task(name="callbot.calls.apply_retention")
def apply_retention() -> dict[str, Any] | None:
    """Purge what ``CALL_RETENTION_DAYS`` / ``AUDIT_RETENTION_DAYS`` no longer keep
    (beat, daily); None when both are 0 (keep forever)."""
    days, audit_days = settings.CALL_RETENTION_DAYS, settings.AUDIT_RETENTION_DAYS
    if not days and not audit_days:
        return None
    now = timezone.now()
    result = retention.purge(
        now - timedelta(days=days) if days else datetime.min.replace(tzinfo=UTC),
        audit_before=now - timedelta(days=audit_days) if audit_days else None,
    )
    return asdict(result)
