"""Celery tasks of the calls app. Thin: each takes ids and calls one function.

Tasks are acks-late (settings): a worker killed mid-task leaves the message to be
delivered again, and ``perform.perform`` makes a repeated delivery harmless.
Names are explicit so queued messages survive a refactor.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from celery import shared_task

from callbot.calls import perform, services
from callbot.calls.models import Action, Call
from callbot.calls.states import CONNECTED_STATES, ActionStatus
from callbot.graph.errors import GraphError, GraphNotFoundError
from callbot.graph.factory import get_graph_client

logger = logging.getLogger(__name__)


@shared_task(name="callbot.calls.perform_action", bind=True, max_retries=None)
def perform_action(self: Any, action_id: int) -> None:
    """Send one queued Action to Graph (see ``perform.perform``); retry on throttling
    or outages after the countdown Graph asked for."""
    retry = perform.perform(action_id)
    if retry is not None:
        if self.request.is_eager:
            # In-process (embedded default, tests): no broker to hold a countdown.
            # The action stays queued; ``requeue_stale_actions`` sends it again.
            logger.info(
                "action %s left queued for the sweep: %s", action_id, retry.reason
            )
            return
        raise self.retry(countdown=retry.countdown)


@shared_task(name="callbot.calls.send_keep_alives")
def send_keep_alives() -> int:
    """Fan out a keepAlive to every connected call not kept alive recently.

    Scheduled by beat every ``KEEP_ALIVE_INTERVAL_SECONDS`` (well within the
    contract's 45 minutes); returns how many were sent.
    """
    due = timezone.now() - timedelta(seconds=settings.KEEP_ALIVE_INTERVAL_SECONDS)
    ids = list(
        Call.objects.filter(state__in=CONNECTED_STATES)
        .exclude(last_keep_alive_at__gte=due)
        .values_list("pk", flat=True)
    )
    for call_id in ids:
        send_keep_alive.delay(call_id)
    return len(ids)


@shared_task(
    name="callbot.calls.send_keep_alive",
    autoretry_for=(GraphError,),
    retry_backoff=True,
    max_retries=3,
)
def send_keep_alive(call_id: int) -> None:
    """POST keepAlive for one call; a 404 means Graph ended it: close it here."""
    call = Call.objects.filter(pk=call_id, state__in=CONNECTED_STATES).first()
    if call is None:
        return
    client = get_graph_client().for_tenant(call.tenant_id or None)
    try:
        client.keep_alive(call.graph_id)
    except GraphNotFoundError:
        services.close_lost_call(call.pk)
        return
    services.note_keep_alive(call.pk)


@shared_task(name="callbot.calls.reconcile_silent_calls")
def reconcile_silent_calls() -> dict[str, int]:
    """GET every live call silent for too long; close the ones Graph forgot."""
    found: dict[str, int] = {}
    for call_id in perform.silent_call_ids():
        try:
            outcome = perform.reconcile_call(call_id)
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
    stale = timezone.now() - timedelta(seconds=settings.ACTION_REQUEUE_AFTER_SECONDS)
    ids = list(
        Action.objects.filter(
            status=ActionStatus.QUEUED, updated_at__lt=stale
        ).values_list("pk", flat=True)[:500]
    )
    for action_id in ids:
        perform_action.delay(action_id)
    return len(ids)


@shared_task(name="callbot.calls.join_due_meetings")
def join_due_meetings() -> int:
    """Join meetings whose scheduled start has come; leave those that ended."""
    joined = 0
    for meeting_id in services.due_meetings():
        try:
            services.request_action(
                Action.Kind.JOIN_MEETING, actor=None, params={"meeting_id": meeting_id}
            )
            joined += 1
        except services.ActionRefusedError as refused:
            logger.warning(
                "scheduled join of meeting %s refused: %s", meeting_id, refused
            )
    for call_id in services.meeting_calls_to_leave():
        try:
            services.request_action(Action.Kind.HANG_UP, actor=None, call=call_id)
        except services.ActionRefusedError as refused:
            logger.info("leaving meeting call %s refused: %s", call_id, refused)
    return joined


@shared_task(
    name="callbot.calls.fetch_recording",
    autoretry_for=(GraphError,),
    retry_backoff=True,
    max_retries=5,
)
def fetch_recording(action_id: int, location: str, access_token: str) -> None:
    """Download a finished ``recordResponse`` and keep it (contract §6.10: fetch
    at once; Graph discards it soon after the call ends). A 404 means it is gone."""
    action = Action.objects.filter(pk=action_id).select_related("call").first()
    if action is None or services.has_recording(action_id):
        return
    tenant = action.call.tenant_id if action.call is not None else ""
    client = get_graph_client().for_tenant(tenant or None)
    try:
        audio = client.download_recording(location, access_token)
    except GraphNotFoundError:
        logger.warning("recording of action %s is gone", action_id)
        return
    services.store_recording(action_id, audio)
