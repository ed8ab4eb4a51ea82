"""One attempt at a queued Action: the body of the ``perform_action`` task, and of
``tasks.perform_kept`` for the actions a worker's IVR task performs itself.

Steps, for one attempt:
1. Claim the action (``lifecycle.claim_action``): only a ``queued`` action not held
   by another worker, with no earlier action of its call still queued, is
   performed; the claim counts the attempt.
2. On a second or later attempt, look before sending again: an earlier attempt may
   have reached Graph before its worker died. Where Graph's state shows the action
   already happened (the participant is muted, the call is gone), record that instead
   of repeating it. Every attempt reuses the action's ``client-request-id``.
3. Send the request; record ``sent`` (outcome by notification) or the final outcome
   Graph answered with (contract §5: some operations come back ``completed``).
4. A retryable Graph error gives the action back and returns a ``RetryLater``; a
   permanent one fails the action with Graph's words.

No database lock is held while Graph is called. All writes go through
``lifecycle``; the requests themselves are ``performers.py``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from callbot.calls import lifecycle, passedon, performers
from callbot.calls.models import Action, Call, Meeting
from callbot.calls.performers import PERFORMERS
from callbot.calls.states import ActionStatus, CallDirection, CallState
from callbot.graph.client import GraphClient
from callbot.graph.errors import GraphError, GraphNotFoundError
from callbot.graph.factory import get_graph_client
from callbot.graph.resources import Identity
from callbot.observability import logcontext

logger = logging.getLogger(__name__)

K = Action.Kind


@dataclass(frozen=True)
class RetryLater:
    """The attempt hit a retryable error; try again after ``countdown`` seconds.

    ``in_order``: nothing failed, an earlier action of the call is still queued
    (most often being performed by another worker at this very moment).
    """

    countdown: float
    reason: str
    in_order: bool = False


def perform(action_id: int) -> RetryLater | None:
    """One attempt at an action; see the module docstring for the steps."""
    # Actions on one call reach Graph in the order they were asked for (a cancel
    # before the next prompt, an IVR's steps); workers may take them in any
    # order. Checked by the claim itself, so waiting is no attempt (counting it
    # would spend the retries a later Graph error needs) and costs no query of
    # its own when nothing is ahead.
    lease = settings.ACTION_LEASE_SECONDS
    action = lifecycle.claim_action(action_id, lease, only_if=~_earlier_queued())
    if action is None:
        if waits_for_earlier(action_id):
            return RetryLater(
                countdown=0.05, reason="an earlier action is queued", in_order=True
            )
        held = lifecycle.lease_left(action_id)
        if held is None:
            return None  # done already, or gone
        # Queued but claimed by a worker that may have died: come back when the
        # claim lapses (a redelivered message can arrive before that).
        return RetryLater(countdown=held + 0.5, reason="claimed by another attempt")
    return perform_claimed(action)


def perform_claimed(action: Action) -> RetryLater | None:
    """Steps 2-4 for an action this process holds the claim of, its call and
    participant loaded: claimed by ``perform``, or stored claimed by the process
    that queued it (``lifecycle.claim_new``)."""
    logcontext.bind_action(action)
    tenant = action.call.tenant_id if action.call is not None else None
    client = get_graph_client().for_tenant(tenant or None)
    try:
        if action.attempts > 1 and _already_done(client, action):
            return None
        PERFORMERS[action.kind](client, action)
        passedon.after_sent(action)
    except GraphError as exc:
        if exc.retryable and action.attempts < settings.ACTION_MAX_ATTEMPTS:
            lifecycle.release_action(action.pk)
            countdown = exc.retry_after or min(2 ** (action.attempts - 1), 30)
            logger.warning(
                "action %s: %s; retrying in %.1f s",
                action.pk,
                exc,
                countdown,
                extra={"action_id": action.pk},
            )
            return RetryLater(countdown=float(countdown), reason=str(exc))
        lifecycle.record_outcome(
            action.pk,
            ActionStatus.FAILED,
            result_code=exc.status or None,
            message=exc.message or str(exc),
            error_code=error_code(exc),
        )
    except (ValueError, KeyError, Meeting.DoesNotExist) as exc:
        # A stored action Graph cannot be asked for (bad parameters slipped in by
        # an older version, a meeting deleted since): fail it, do not retry.
        lifecycle.record_outcome(
            action.pk, ActionStatus.FAILED, message=str(exc), error_code="invalid"
        )
    return None


def _earlier_queued() -> Q:
    """An action of a call with an earlier action still queued (and recent: one
    stuck longer than a lease is the sweep's business, not a reason to wait)."""
    recent = timezone.now() - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    earlier = Action.objects.filter(
        call_id=OuterRef("call_id"),
        pk__lt=OuterRef("pk"),
        status=ActionStatus.QUEUED,
        created_at__gte=recent,
    )
    return Q(Exists(earlier), call__isnull=False)


def waits_for_earlier(action_id: int) -> bool:
    """True if the action is queued behind an earlier one of its call. One query,
    the same question as ``_earlier_queued`` asks of a claim.

    Plain SQL, not a queryset: a worker's IVR task asks it before each action of
    a step it performs, and again after each short wait; building the ``Exists``
    queryset cost Django several times what the database spent answering it.
    """
    recent = timezone.now() - timedelta(seconds=settings.ACTION_LEASE_SECONDS)
    queued = ActionStatus.QUEUED.value
    with connection.cursor() as cursor:
        cursor.execute(
            _waits_sql(),
            [
                action_id,
                queued,
                queued,
                connection.ops.adapt_datetimefield_value(recent),
            ],
        )
        return cursor.fetchone() is not None


@functools.lru_cache(maxsize=1)
def _waits_sql() -> str:
    """``waits_for_earlier``'s statement: the action, still queued, with an
    earlier queued action of its call created within a lease."""
    quote = connection.ops.quote_name
    table = quote(Action._meta.db_table)
    pk = quote(Action._meta.pk.column)
    call_id = quote(Action._meta.get_field("call").column)
    status = quote(Action._meta.get_field("status").column)
    created = quote(Action._meta.get_field("created_at").column)
    # Only our own quoted names and placeholders are interpolated.
    return (
        f"SELECT 1 FROM {table} a WHERE a.{pk} = %s AND a.{status} = %s "  # noqa: S608
        f"AND a.{call_id} IS NOT NULL AND EXISTS (SELECT 1 FROM {table} e "
        f"WHERE e.{call_id} = a.{call_id} AND e.{pk} < a.{pk} "
        f"AND e.{status} = %s AND e.{created} >= %s)"
    )


def error_code(exc: GraphError) -> str:
    """A stable code for the kind of Graph failure (``live.action_message`` words)."""
    if exc.status == 0:
        return "transport"
    if exc.status >= 500:
        return "graph_5xx"
    return f"graph_{exc.status}"


# --- looking before sending again ----------------------------------------------------


def _already_done(client: GraphClient, action: Action) -> bool:
    """True (and the outcome recorded) if Graph shows an earlier attempt happened.

    Only what Graph lets us read is checked; for the rest (prompts, recordings,
    tones, hold music) the request is sent again with the same client-request-id.
    A new meeting needs no look: its request is idempotent (``createOrGet``).
    """
    call = action.call
    crid = str(action.client_request_id)
    pid = str(action.parameters.get("participant_id", ""))
    try:
        if action.kind in (K.HANG_UP, K.REJECT, K.REDIRECT) and call is not None:
            state = client.get_call(call.graph_id, client_request_id=crid).state
            if state not in ("terminating", "terminated"):
                return False
        elif action.kind == K.ANSWER and call is not None:
            state = client.get_call(call.graph_id, client_request_id=crid).state
            if state in (None, "incoming"):
                return False
            lifecycle.record_sent(action.pk)
            return True
        elif action.kind == K.MUTE_PARTICIPANT and call is not None:
            p = client.get_participant(call.graph_id, pid, client_request_id=crid)
            if not p.is_muted:
                return False
        elif action.kind in (K.MUTE_BOT, K.UNMUTE_BOT) and call is not None:
            if not call.my_participant_id:
                return False
            p = client.get_participant(
                call.graph_id, call.my_participant_id, client_request_id=crid
            )
            if bool(p.is_muted) != (action.kind == K.MUTE_BOT):
                return False
        elif action.kind == K.INVITE and call is not None:
            target = action.parameters["target"]
            wanted = target.get("user_id") or target.get("phone")
            people = client.list_participants(call.graph_id, client_request_id=crid)
            if not any(p.identity.id.lower() == wanted for p in people):
                return False
        elif action.kind == K.REMOVE_PARTICIPANT and call is not None:
            client.get_participant(call.graph_id, pid, client_request_id=crid)
            return False
        elif action.kind == K.TRANSFER and call is not None:
            # A second POST would transfer again (or 409). A transfer under way
            # is settled by the call's next states, as after a first attempt; a
            # call that is ending or gone (404) settles it as the table says.
            state = client.get_call(call.graph_id, client_request_id=crid).state
            if state in ("transferring", "transfer_accepted"):
                lifecycle.record_sent(action.pk)
                return True
            if state not in ("terminating", "terminated"):
                return False
        elif action.kind == K.JOIN_MEETING:
            # Graph cannot list calls, and a second POST joins a second time; but
            # the earlier join's notifications reached the webhook within the
            # lease, so its call is in our database.
            joined = _call_joined_earlier(action)
            if joined is None:
                return False
            lifecycle.record_sent(action.pk, call=joined)
            return True
        elif action.kind in (K.PLACE_CALL, K.PLACE_GROUP_CALL):
            # A second POST rings everyone again. The earlier attempt's call
            # reported itself to the webhook (its state only); Graph says whom
            # it calls.
            return _link_call_placed_earlier(client, action)
        else:
            return False
    except GraphNotFoundError:
        if action.kind not in (
            K.HANG_UP,
            K.REJECT,
            K.REDIRECT,
            K.REMOVE_PARTICIPANT,
            K.TRANSFER,
        ):
            return False
    logger.info(
        "action %s already happened in an earlier attempt",
        action.pk,
        extra={"action_id": action.pk},
    )
    lifecycle.record_outcome(
        action.pk,
        ActionStatus.COMPLETED,
        message="Done (confirmed after a retry).",
    )
    return True


# At most this many unclaimed new calls are looked at (one GET each) for the call
# an earlier attempt placed.
PLACED_CANDIDATES = 10


def _link_call_placed_earlier(client: GraphClient, action: Action) -> bool:
    """Link a place action to the call an earlier attempt placed; False if none.

    Steps:
    1. Candidates: calls stored since the action was asked for that are live,
       not incoming, in no meeting, and linked to no action that makes calls.
       Their notifications carried only their state, so they say nothing of
       whom they call.
    2. Ask Graph for each, oldest first: the one whose targets are the
       action's is the earlier attempt's call. One that has ended meanwhile
       (404) cannot be told apart and is passed over.
    3. Link it as the earlier attempt would have (``link_placed_call``), which
       refuses a call another attempt took in the meantime.
    """
    wanted = {key for t in _targets(action) if (key := _target_key(t))}
    if not wanted:
        return False
    crid = str(action.client_request_id)
    candidates = (
        Call.objects.filter(created_at__gte=action.created_at, meeting__isnull=True)
        .exclude(state=CallState.TERMINATED)
        .exclude(direction=CallDirection.INCOMING)
        .exclude(actions__kind__in=performers.CALL_CREATING_KINDS)
        .order_by("created_at")[:PLACED_CANDIDATES]
    )
    for candidate in candidates:
        try:
            resource = client.get_call(candidate.graph_id, client_request_id=crid)
        except GraphNotFoundError:
            continue
        theirs = {
            Identity.from_identity_set(t.get("identity")).id.lower()
            for t in resource.targets or []
        }
        if theirs == wanted and performers.link_placed_call(action, resource):
            logger.info(
                "action %s: linked call %s an earlier attempt placed",
                action.pk,
                candidate.graph_id,
                extra={"action_id": action.pk},
            )
            return True
    return False


def _targets(action: Action) -> list[dict[str, str]]:
    if action.kind == K.PLACE_CALL:
        return [action.parameters["target"]]
    targets: list[dict[str, str]] = action.parameters["targets"]
    return targets


def _target_key(target: dict[str, str]) -> str:
    """A stored target as Graph's identity id, lower case (``params.clean_target``)."""
    return (target.get("user_id") or target.get("phone") or "").lower()


def _call_joined_earlier(action: Action) -> Call | None:
    """A live call in the action's meeting, created since the action was asked for
    and linked to no join: what an earlier attempt's join made. (Its notifications
    say no direction; only an invitation the bot answered is ``incoming``.)"""
    return (
        Call.objects.filter(
            meeting_id=action.parameters.get("meeting_id"),
            created_at__gte=action.created_at,
        )
        .exclude(state=CallState.TERMINATED)
        .exclude(direction=CallDirection.INCOMING)
        .exclude(actions__kind=K.JOIN_MEETING)
        .order_by("created_at")
        .first()
    )
