"""What users and the bot ask Callbot to do: ``request_action`` and friends.

Every request works in one transaction: lock the call, check the actor and the
move (``kinds.py`` has the row for each kind), clean the parameters, store the
Action (``queued``) and an AuditEntry, bump the call's version, and register the
side effects with ``transaction.on_commit``: the task that performs the action
(sent by name, ``enqueue.py``) and the live delta. The Graph request itself
happens in the worker (``perform.py``), never under a lock; how the action then
moves is ``lifecycle.py``.

Must not import the dashboard, the tasks or ingest; it never calls Graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from callbot.calls import audit, deltas, enqueue, kinds
from callbot.calls.access import (
    ActionRefusedError,
    Actor,
    check_actor,
    locked_call,
    present_participant,
)
from callbot.calls.live import CallDelta, iso
from callbot.calls.models import Action, Call, Participant

K = Action.Kind

# Roles whose microphones "mute everyone" leaves alone.
PRESENTER_ROLES = frozenset({"presenter", "organizer", "producer", "coorganizer"})


def request(
    kind: str,
    *,
    actor: Actor,
    call: Call | int | None = None,
    participant_id: str = "",
    params: Mapping[str, Any] | None = None,
    client_ip: str | None = None,
) -> list[Action]:
    """Any request a person can make, by its kind: the Actions it queued.

    ``mute_all`` queues one mute per person (``request_mute_all``); every other
    kind is one ``request_action``. Raises ``ActionRefusedError`` (audited).
    """
    if kind == "mute_all":
        if call is None:
            raise ActionRefusedError("invalid", "Mute everyone needs a call.")
        return request_mute_all(call=call, actor=actor, client_ip=client_ip)
    return [
        request_action(
            kind,
            actor=actor,
            call=call,
            participant_id=participant_id,
            params=params,
            client_ip=client_ip,
        )
    ]


def request_action(
    kind: str,
    *,
    actor: Actor,
    call: Call | int | None = None,
    participant_id: str = "",
    params: Mapping[str, Any] | None = None,
    client_ip: str | None = None,
) -> Action:
    """Validate and queue one action; Graph is called by the ``perform_action`` task.

    ``actor`` None is the bot itself (policy, IVR, beat); a user needs the
    ``calls.request_action`` permission. ``participant_id`` is the participant's
    Graph id. ``params`` are described per kind in docs/call-control.md.

    In one transaction: lock the call, check its state and the participant, store
    the Action (``queued``) and an AuditEntry, bump the call's version. After
    commit: enqueue the task, then publish the delta on ``call.<pk>`` and
    ``calls.live``.

    Raises ``ActionRefusedError``; the refusal is audited (committed on its own).
    """
    call_pk = call.pk if isinstance(call, Call) else call
    try:
        with transaction.atomic():
            action, delta = _queue(kind, actor, call_pk, participant_id, params or {})
            audit.record(
                actor,
                action.kind,
                action.target,
                action.call,
                outcome="requested",
                detail={"action_id": action.pk, "params": action.parameters},
                client_ip=client_ip,
            )
            # Enqueue first: the Graph request should not wait for the live push.
            enqueue.send_on_commit(enqueue.PERFORM_ACTION, action.pk)
            if delta is not None and action.call is not None:
                deltas.announce(
                    [delta],
                    {action.call.pk: action.call},
                    actions_changed={action.call.pk},
                )
    except ActionRefusedError as refused:
        audit.record_refusal(actor, kind, call_pk, participant_id, refused, client_ip)
        raise
    return action


def request_mute_all(
    *,
    call: Call | int,
    actor: Actor,
    client_ip: str | None = None,
) -> list[Action]:
    """Mute every present, unmuted person who is not the bot or a presenter.

    One ``mute_participant`` action each (Graph mutes one participant per request).
    Returns the actions queued; an empty list when everyone is already muted.
    Raises ``ActionRefusedError`` as ``request_action`` does; a call that does not
    exist, has ended or is peer-to-peer is refused (and audited) even when nobody
    would be muted.
    """
    call_pk = call.pk if isinstance(call, Call) else call
    row = kinds.KINDS["mute_all"]
    try:
        check_actor(actor)
        with transaction.atomic():
            locked_call(
                call_pk,
                states=row.states or (),
                verb=row.verb,
                group_only=row.group_only,
                what=row.label.lower(),
            )
    except ActionRefusedError as refused:
        audit.record_refusal(actor, "mute_all", call_pk, "", refused, client_ip)
        raise
    targets = list(
        Participant.objects.filter(
            call_id=call_pk, left_at__isnull=True, is_bot=False, is_muted=False
        )
        .exclude(role__in=PRESENTER_ROLES)
        .values_list("graph_id", flat=True)
    )
    return [
        request_action(
            K.MUTE_PARTICIPANT,
            actor=actor,
            call=call_pk,
            participant_id=pid,
            client_ip=client_ip,
        )
        for pid in targets
    ]


def _queue(
    kind: str,
    actor: Actor,
    call_pk: int | None,
    participant_id: str,
    params: Mapping[str, Any],
) -> tuple[Action, CallDelta | None]:
    row = kinds.spec(kind)
    if row is None or not (row.is_action or row.unsupported):
        raise ActionRefusedError("invalid", f"Unknown action {kind!r}.")
    if row.unsupported:
        raise ActionRefusedError("unsupported", row.unsupported)
    check_actor(actor, bot_only=row.bot_only, what=row.label.lower())
    call: Call | None = None
    participant: Participant | None = None
    if row.states is not None:
        call = locked_call(
            call_pk,
            states=row.states,
            verb=row.verb,
            group_only=row.group_only,
            what=row.label.lower(),
        )
        if row.participant:
            participant = present_participant(call, participant_id)
    elif call_pk is not None:
        raise ActionRefusedError(
            "invalid", f"{row.label.lower()} does not act on a call."
        )
    if participant is not None:
        clean: dict[str, Any] = {"participant_id": participant.graph_id}
        target = (
            participant.display_name or participant.identity_id or participant.graph_id
        )
    else:
        clean, target = row.clean(params, call)
    action = Action(
        call=call,
        participant=participant,
        requested_by=actor if isinstance(actor, User) else None,
        kind=kind,
        target=target[:255],
        parameters=clean,
    )
    action.client_context = str(action.client_request_id)
    action.save()
    if call is None:
        return action, None
    return action, deltas.bump(call, actions=[action])


def set_waiting(
    call: Call, waiting: bool, *, actor: Actor, client_ip: str | None = None
) -> None:
    """Mark ``call`` as held for a person (hold music playing) or as taken.

    Precondition: inside a transaction, holding the call's row lock. Writes
    ``waiting_since``, audits who took the call (``take``), bumps the version, and
    after commit publishes the change to the call's page and the board.
    """
    call_waiting_before = call.waiting_since
    since = timezone.now() if waiting else None
    Call.objects.filter(pk=call.pk).update(waiting_since=since)
    call.waiting_since = since
    if not waiting:
        audit.record(
            actor,
            "take",
            call.source_display,
            call,
            outcome="requested",
            detail={"waiting_since": iso(call_waiting_before)},
            client_ip=client_ip,
        )
    delta = deltas.bump(call, call_changes={"waiting_since": iso(since)})
    deltas.announce([delta], {call.pk: call})
