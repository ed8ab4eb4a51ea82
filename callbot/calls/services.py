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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from callbot.calls import (
    audit,
    availability,
    deltas,
    enqueue,
    kinds,
    lifecycle,
    meetings,
)
from callbot.calls.access import (
    ActionRefusedError,
    Actor,
    check_actor,
    check_call_state,
    locked_call,
    present_participant,
)
from callbot.calls.app_permissions import held_roles
from callbot.calls.live import CallDelta, iso
from callbot.calls.models import Action, Call, Meeting, Participant

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
    call_locked: bool = False,
) -> Action:
    """Validate and queue one action; Graph is called by the ``perform_action`` task.

    ``actor`` None is the bot itself (policy, IVR, beat); a user needs the
    ``calls.request_action`` permission. ``participant_id`` is the participant's
    Graph id. ``params`` are described per kind in docs/call-control.md.
    ``call_locked``: ``call`` is a Call the caller locked in this transaction and
    keeps current (every change to it went through this module, on this instance);
    it is checked as it is instead of being read and locked a second time.

    In one transaction: lock the call, check its state and the participant, store
    the Action (``queued``) and an AuditEntry, bump the call's version. After
    commit: enqueue the task, then publish the delta on ``call.<pk>`` and
    ``calls.live``. Inside ``enqueue.performing_here`` (a worker's IVR task) the
    action is performed in this thread after commit instead of being enqueued,
    and is stored already claimed for that attempt.

    Raises ``ActionRefusedError``; the refusal is audited (committed on its own).
    """
    call_pk = call.pk if isinstance(call, Call) else call
    locked = call if call_locked and isinstance(call, Call) else None
    here = enqueue.keeping()
    try:
        with transaction.atomic(), audit.written_last():
            action, delta = _queue(
                kind, actor, call_pk, participant_id, params or {}, locked, here
            )
            audit.record(
                actor,
                action.kind,
                action.target,
                action.call,
                outcome="requested",
                detail={"action_id": action.pk, "params": action.parameters},
                client_ip=client_ip,
                action_ref=action.pk,
            )
            # Enqueue first: the Graph request should not wait for the live push.
            if here:
                enqueue.perform_on_commit(action)
            else:
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


@dataclass
class JoinRequest:
    """What ``request_join`` did: the meeting, the join it queued (None when it
    stopped to ask), and the bot's live calls already in that meeting."""

    meeting: Meeting
    action: Action | None
    already_in: list[Call] = field(default_factory=list)


def request_join(
    *,
    actor: Actor,
    params: Mapping[str, Any],
    again: bool = False,
    client_ip: str | None = None,
) -> JoinRequest:
    """Join a meeting named by ``meeting_id``, a pasted ``join_web_url`` (any form
    Teams hands out) or ``join_meeting_id`` + ``passcode``.

    When the bot already has a live call in that meeting, nothing is queued unless
    ``again``: the person is asked first (the bot may join a meeting several
    times, and each time is another participant). Raises ``ActionRefusedError``
    (audited) for an actor who may not act or coordinates that name no meeting.
    """
    try:
        check_actor(actor)
        meeting = meetings.meeting_to_join(params)
    except ActionRefusedError as refused:
        audit.record_refusal(actor, K.JOIN_MEETING, None, "", refused, client_ip)
        raise
    already_in = meetings.live_calls_in(meeting)
    if already_in and not again:
        return JoinRequest(meeting, None, already_in)
    action = request_action(
        K.JOIN_MEETING,
        actor=actor,
        params={"meeting_id": meeting.pk},
        client_ip=client_ip,
    )
    return JoinRequest(meeting, action, already_in)


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
            locked = locked_call(
                call_pk,
                states=row.states or (),
                verb=row.verb,
                what=row.label.lower(),
            )
            require_offered(locked, "mute_all")
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


def holds_nul(value: Any) -> bool:
    """Whether a JSON value holds a NUL character anywhere, in a key or a value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(v) for v in value)
    return False


def require_offered(call: Call, kind: str) -> None:
    """Raise ``ActionRefusedError`` (``not_offered``) unless Graph allows ``kind`` on
    ``call``, with the sentence the call page shows beside the disabled control."""
    reason = availability.availability(call, kind, held_roles())
    if reason is not None:
        raise ActionRefusedError("not_offered", reason)


def _queue(
    kind: str,
    actor: Actor,
    call_pk: int | None,
    participant_id: str,
    params: Mapping[str, Any],
    locked: Call | None = None,
    claimed: bool = False,
) -> tuple[Action, CallDelta | None]:
    row = kinds.spec(kind)
    if row is None or not (row.is_action or row.unsupported):
        raise ActionRefusedError("invalid", f"Unknown action {kind!r}.")
    if holds_nul(params) or holds_nul(participant_id):
        # PostgreSQL's jsonb and text cannot store one: the insert would fail.
        raise ActionRefusedError("invalid", "Text may not hold NUL characters.")
    if row.unsupported:
        raise ActionRefusedError("unsupported", row.unsupported)
    check_actor(actor, bot_only=row.bot_only, what=row.label.lower())
    call: Call | None = None
    participant: Participant | None = None
    if row.states is not None and locked is not None:
        call = check_call_state(locked, states=row.states, verb=row.verb)
    elif row.states is not None:
        call = locked_call(
            call_pk,
            states=row.states,
            verb=row.verb,
            what=row.label.lower(),
        )
        require_offered(call, kind)
        if row.participant:
            participant = present_participant(call, participant_id)
    elif call_pk is not None:
        raise ActionRefusedError(
            "invalid", f"{row.label.lower()} does not act on a call."
        )
    else:
        missing = availability.missing_permission(kind, held_roles())
        if missing is not None:
            raise ActionRefusedError("not_offered", missing)
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
    if claimed:
        lifecycle.claim_new(action, settings.ACTION_LEASE_SECONDS)
    action.save()
    if call is None:
        return action, None
    return action, deltas.bump(call, actions=[action])


def set_waiting(
    call: Call,
    waiting: bool,
    *,
    actor: Actor,
    client_ip: str | None = None,
    taken: bool = True,
    until: datetime | None = None,
    then: str = "",
) -> None:
    """Mark ``call`` as held for a person (hold music playing) or as no longer held.

    Precondition: inside a transaction, holding the call's row lock. Writes
    ``waiting_since`` (and the wait's limit, ``until`` and what happens ``then``:
    ``set_wait_limit``; no longer waiting clears it), audits who took the call (``take``; not when ``taken`` is
    false: the wait ended with nobody taking it), bumps the version, and after
    commit publishes the change to the call's page and the board.
    """
    call_waiting_before = call.waiting_since
    since = timezone.now() if waiting else None
    limit = _write_wait(call, until if waiting else None, then, waiting_since=since)
    if not waiting and taken:
        audit.record(
            actor,
            "take",
            call.source_display,
            call,
            outcome="requested",
            detail={"waiting_since": iso(call_waiting_before)},
            client_ip=client_ip,
        )
    delta = deltas.bump(call, save=False, call_changes=limit)
    deltas.announce([delta], {call.pk: call})


def set_wait_limit(call: Call, until: datetime | None, then: str = "") -> None:
    """Say until when ``call`` waits for a supervisor and what Callbot does then
    (``then``, in words: "reject (busy)"); ``until`` None: no limit any more.

    For a ringing call a call policy handed to the supervisors; a held call's
    limit comes with ``set_waiting``. Precondition: inside a transaction, holding
    the call's row lock. Bumps the version and after commit publishes the change
    to the call's page and the board.
    """
    limit = _write_wait(call, until, then)
    delta = deltas.bump(call, save=False, call_changes=limit)
    deltas.announce([delta], {call.pk: call})


def _write_wait(
    call: Call, until: datetime | None, then: str, **since: datetime | None
) -> dict[str, str | None]:
    """Write the wait's limit (and ``waiting_since``, when given) and the call's
    next version in one UPDATE (the caller's ``deltas.bump(save=False)`` advances
    the version it holds); returns the changes for the delta."""
    then = then[:255] if until is not None else ""
    fields: dict[str, Any] = {"wait_ends_at": until, "wait_then": then, **since}
    Call.objects.filter(pk=call.pk).update(version=F("version") + 1, **fields)
    for name, value in fields.items():
        setattr(call, name, value)
    return {
        name: value if isinstance(value, str) else iso(value)
        for name, value in fields.items()
    }
