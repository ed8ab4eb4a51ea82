"""Late and reordered notifications: what order information the contract gives
(§3.2 call state moves, ``terminated`` final; §4.1 delta rosters' ``sequenceNumber``
and entries' ``rosterSequenceNumber``; §6.12 tones' ``sequenceId``; §5 operations
final once final) and that ingest honours all of it.

The last test delivers a recorded stream for many calls in random interleavings
with redeliveries and checks every call ends as in-order delivery left it, wherever
order information exists (docs/reliability.md, "Order", says what is excluded).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbot.calls.ingest import apply_notifications
from callbot.calls.models import Action, Call, Participant
from callbot.calls.states import ActionStatus, CallDirection, CallKind, CallState
from callbot.graph.notifications import parse_notification_batch
from callbot.graph.resources import normalise_id
from tests.factories import ActionFactory, CallFactory

pytestmark = pytest.mark.django_db

MEETING = "2c1f0c00-9e8d-4c7b-a6f5-e4d3c2b1a098"
LEE = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"
ANA = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"


# --- notifications in the contract's shapes (§7.2, §7.5-§7.9) ----------------------
def _note(call_id: str, suffix: str, change: str, data: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": change,
        "resourceUrl": f"/communications/calls/{call_id}{suffix}",
        "resourceData": data,
    }


def call_state(call_id: str, state: str, **extra: Any) -> dict[str, Any]:
    change = {"incoming": "created", "terminated": "deleted"}.get(state, "updated")
    data = {"@odata.type": "#microsoft.graph.call", "id": call_id, "state": state}
    return _note(call_id, "", change, {**data, **extra})


def tone(call_id: str, sequence: int, name: str) -> dict[str, Any]:
    info = {"@odata.type": "#microsoft.graph.toneInfo", "sequenceId": sequence}
    return call_state(call_id, "established", toneInfo={**info, "tone": name})


def person(pid: str, *, muted: bool = False, **extra: Any) -> dict[str, Any]:
    identity = {"user": {"id": f"u-{pid[:8]}", "displayName": f"P {pid[:4]}"}}
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": pid,
        "info": {"identity": identity},
        "isMuted": muted,
        "isInLobby": False,
        **extra,
    }


def delta(call_id: str, sequence: int, *entries: dict[str, Any]) -> dict[str, Any]:
    data = {
        "@odata.type": "#microsoft.graph.deltaParticipants",
        "sequenceNumber": sequence,
        "participants": [{**e, "rosterSequenceNumber": sequence} for e in entries],
    }
    return _note(call_id, "/participants", "updated", data)


def left(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "removedState": {"reason": "left"}}


def full(call_id: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return _note(call_id, "/participants", "updated", list(entries))


def operation(call_id: str, op_id: str, status: str) -> dict[str, Any]:
    data = {
        "@odata.type": "#microsoft.graph.playPromptOperation",
        "id": op_id,
        "status": status,
    }
    return _note(call_id, f"/operations/{op_id}", "deleted", data)


def deliver(*notifications: dict[str, Any], message_id: str = "") -> None:
    body = json.dumps({"value": list(notifications)})
    apply_notifications(parse_notification_batch(body), message_id=message_id)


def meeting_call(**extra: Any) -> Call:
    """The bot's leg of a meeting, as the bot stores it before Graph says a word."""
    fields = {
        "graph_id": MEETING,
        "graph_key": normalise_id(MEETING),
        "direction": CallDirection.OUTGOING,
        "kind": CallKind.MEETING,
        "state": CallState.ESTABLISHING,
    }
    call: Call = CallFactory(**{**fields, **extra})
    return call


def present(call_id: str) -> dict[str, bool]:
    rows = Participant.objects.filter(call__graph_id=call_id, left_at__isnull=True)
    return {p.graph_id: p.is_muted for p in rows}


# --- findings ----------------------------------------------------------------------
def test_delta_roster_after_the_call_ended_brings_nobody_back() -> None:
    meeting_call(delta_roster=True)
    deliver(call_state(MEETING, "established"), delta(MEETING, 1, person(LEE)))
    deliver(call_state(MEETING, "terminated"))

    deliver(delta(MEETING, 2, person(ANA), person(LEE, muted=True)))

    assert present(MEETING) == {}


def test_roster_of_a_call_whose_end_came_first_brings_nobody_in() -> None:
    # The end is the first thing we hear of the call; its roster arrives after.
    deliver(call_state(MEETING, "terminated"), message_id="end")
    deliver(full(MEETING, person(LEE), person(ANA)), message_id="late")
    deliver(delta(MEETING, 3, person(LEE)), message_id="later")

    assert Call.objects.get(graph_id=MEETING).state == CallState.TERMINATED
    assert present(MEETING) == {}


def test_nothing_reopens_a_terminated_call() -> None:
    meeting_call()
    deliver(call_state(MEETING, "terminated"))
    for state in ("establishing", "established", "hold", "terminating"):
        deliver(call_state(MEETING, state))
    assert Call.objects.get(graph_id=MEETING).state == CallState.TERMINATED


def test_older_delta_entry_does_not_undo_a_newer_mute() -> None:
    meeting_call(delta_roster=True)
    deliver(delta(MEETING, 4, person(LEE, muted=True)))
    deliver(delta(MEETING, 2, person(LEE, muted=False), person(ANA)))

    assert present(MEETING) == {LEE: True, ANA: False}


def test_older_delta_join_does_not_bring_back_who_left_since() -> None:
    meeting_call(delta_roster=True)
    deliver(delta(MEETING, 5, left(person(LEE))))
    deliver(delta(MEETING, 3, person(LEE)))

    assert present(MEETING) == {}
    assert Participant.objects.get(graph_id=LEE).left_at is not None


def test_full_roster_with_sequence_numbers_does_not_roll_back_newer_entries() -> None:
    # A full roster whose entries carry rosterSequenceNumber (as GET .../participants
    # answers in delta mode) is applied entry by entry like a delta: an entry older
    # than the stored one is ignored, and an absence removes nobody.
    meeting_call(delta_roster=True)
    deliver(delta(MEETING, 7, person(LEE, muted=True)), delta(MEETING, 8, person(ANA)))
    older = {**person(LEE, muted=False), "rosterSequenceNumber": 3}

    deliver(full(MEETING, older))

    assert present(MEETING) == {LEE: True, ANA: False}


def test_full_roster_without_sequences_does_not_roll_back_a_delta_roster() -> None:
    # In a delta-roster call, a full roster without sequence numbers cannot be
    # placed among the deltas (an old one redelivered, or one sent before delta mode
    # began): it adds who the deltas never mentioned, and changes no sequenced entry.
    meeting_call(delta_roster=True)
    deliver(delta(MEETING, 7, person(LEE, muted=True)))
    stranger = "5e4d3c2b-1a09-4f8e-b7d6-a5b4c3d2e1f0"

    deliver(full(MEETING, person(ANA, muted=False), person(stranger)))

    assert present(MEETING) == {LEE: True, ANA: False, stranger: False}


def test_hold_and_established_apply_in_arrival_order() -> None:
    # The decision (docs/reliability.md, "Order"): established and hold move both
    # ways and carry no sequence, so a late established cannot be told from the
    # call taken off hold; the last one to arrive stands.
    meeting_call(state=CallState.ESTABLISHED)
    deliver(call_state(MEETING, "hold"))
    assert Call.objects.get(graph_id=MEETING).state == CallState.HOLD
    deliver(call_state(MEETING, "established"))
    assert Call.objects.get(graph_id=MEETING).state == CallState.ESTABLISHED


def test_older_tone_arriving_late_changes_nothing() -> None:
    meeting_call(state=CallState.ESTABLISHED)
    deliver(tone(MEETING, 5, "tone5"))
    deliver(tone(MEETING, 4, "tone4"))
    call = Call.objects.get(graph_id=MEETING)
    assert (call.last_tone, call.last_tone_sequence) == ("tone5", 5)


def test_final_operation_is_not_reopened_by_another_late_one() -> None:
    call = meeting_call(state=CallState.ESTABLISHED)
    op = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    ActionFactory(call=call, status=ActionStatus.SENT, operation_key=normalise_id(op))
    deliver(operation(MEETING, op, "failed"))
    deliver(operation(MEETING, op, "completed"))
    assert Action.objects.get(call=call).status == ActionStatus.FAILED


def test_hold_music_started_then_stopped_stays_stopped_whatever_finishes_first() -> (
    None
):
    call = meeting_call(state=CallState.ESTABLISHED)
    deliver(full(MEETING, person(LEE)))
    start, stop = (
        "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
        "2c3d4e5f-6071-4829-93a4-b5c6d7e8f9a0",
    )
    for kind, op in (("start_hold_music", start), ("stop_hold_music", stop)):
        ActionFactory(
            call=call,
            kind=kind,
            status=ActionStatus.SENT,
            operation_key=normalise_id(op),
            parameters={"participant_id": LEE},
        )

    deliver(operation(MEETING, stop, "completed"))
    deliver(operation(MEETING, start, "completed"))  # the older one, late

    assert Participant.objects.get(graph_id=LEE).on_hold is False


# --- convergence -------------------------------------------------------------------
@dataclass
class Stream:
    """A recorded notification stream: per call, chains whose order must be kept
    (no order information) and notifications that may go anywhere."""

    calls: list[str] = field(default_factory=list)
    chains: list[list[dict[str, Any]]] = field(default_factory=list)
    in_order: list[dict[str, Any]] = field(default_factory=list)
    # (call id, operation id) for the actions the bot asked for beforehand.
    operations: list[tuple[str, str]] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def record(rng: random.Random, calls: int) -> Stream:
    """A stream of ``calls`` calls, each in one of four scenarios, with its
    in-order delivery (``in_order``: call by call, as Graph sent it)."""
    s = Stream()
    for i in range(calls):
        call_id = _uid(rng)
        s.calls.append(call_id)
        kind = i % 4
        ordered: list[dict[str, Any]] = []
        chain: list[dict[str, Any]] = []  # the part without order information
        if kind == 0:  # someone rings the bot; it is answered; keys are pressed
            ordered += [
                call_state(call_id, "incoming", direction="incoming"),
                call_state(call_id, "establishing"),
            ]
            chain.append(call_state(call_id, "established"))
            tones = [
                tone(call_id, n, f"tone{rng.randrange(10)}")
                for n in range(1, rng.randrange(2, 6))
            ]
            # Put on hold and taken off it: no order information between them,
            # nor between them and established or tones (which carry it).
            if rng.random() >= 0.5:
                ordered += tones
            else:
                chain += tones
                # Graph's etag tells the two established updates apart.
                chain += [call_state(call_id, "hold", **{"@odata.etag": 'W/"2"'})]
                if rng.random() < 0.5:
                    etag = {"@odata.etag": 'W/"3"'}
                    chain += [call_state(call_id, "established", **etag)]
        else:
            s.outgoing.append(call_id)
            ordered.append(call_state(call_id, "established"))
            people = [_uid(rng) for _ in range(rng.randrange(2, 6))]
            muted = dict.fromkeys(people, False)
            here: set[str] = set()
            if kind in (1, 2):  # a meeting with a delta roster
                for seq in range(1, rng.randrange(4, 12)):
                    pid = rng.choice(people)
                    if pid not in here:
                        here.add(pid)
                        entry = person(pid, muted=muted[pid])
                    elif rng.random() < 0.6:
                        muted[pid] = not muted[pid]
                        entry = person(pid, muted=muted[pid])
                    else:
                        here.discard(pid)
                        entry = left(person(pid, muted=muted[pid]))
                    ordered.append(delta(call_id, seq, entry))
            else:  # a meeting with full rosters: no order information
                for _ in range(rng.randrange(2, 6)):
                    pid = rng.choice(people)
                    if pid in here and rng.random() < 0.4:
                        here.discard(pid)
                    else:
                        here.add(pid)
                        muted[pid] = rng.random() < 0.5
                    chain.append(
                        full(
                            call_id, *(person(p, muted=muted[p]) for p in sorted(here))
                        )
                    )
            for _ in range(rng.randrange(0, 3)):
                op_id = _uid(rng)
                s.operations.append((call_id, op_id))
                ordered.append(
                    operation(call_id, op_id, rng.choice(["completed", "failed"]))
                )
        end = [call_state(call_id, "terminated")] if rng.random() < 0.4 else []
        s.in_order += ordered + chain + end
        s.chains.append(chain)
        s.chains += [[n] for n in ordered + end]
    return s


def interleave(rng: random.Random, chains: Iterable[list[dict[str, Any]]]) -> list[Any]:
    """A random interleaving that keeps each chain's order."""
    queues = [list(c) for c in chains if c]
    out: list[dict[str, Any]] = []
    while queues:
        i = rng.randrange(len(queues))
        out.append(queues[i].pop(0))
        if not queues[i]:
            queues.pop(i)
    return out


def prepare(s: Stream) -> None:
    Call.objects.all().delete()
    for call_id in s.outgoing:
        meeting_call(graph_id=call_id, graph_key=normalise_id(call_id))
    for call_id, op_id in s.operations:
        ActionFactory(
            call=Call.objects.get(graph_id=call_id),
            status=ActionStatus.SENT,
            operation_key=normalise_id(op_id),
        )


def outcome(s: Stream) -> dict[str, Any]:
    """What must not depend on delivery order, per call."""
    found: dict[str, Any] = {}
    for call in Call.objects.filter(graph_id__in=s.calls):
        rows = list(call.participants.all())
        ended = call.state == CallState.TERMINATED
        found[call.graph_id] = {
            "state": call.state,
            # An ended call takes no tones: one arriving after the end is dropped.
            "tone": None if ended else (call.last_tone, call.last_tone_sequence),
            "present": {p.graph_id: p.is_muted for p in rows if p.left_at is None},
            # Who left an ended call differs: a roster arriving after its end
            # creates nobody, in-order it was marked left at the end.
            "left": set()
            if ended
            else {p.graph_id for p in rows if p.left_at is not None},
            "actions": {a.operation_key: a.status for a in call.actions.order_by("pk")},
        }
    return found


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 8))
def test_every_call_ends_as_in_order_delivery_left_it(seed: int, batch: int) -> None:
    rng = random.Random(seed)
    stream = record(rng, calls=10)

    prepare(stream)
    for i, call_id in enumerate(stream.calls):
        # Each call's notifications in one batch, applied in array order.
        mine = [n for n in stream.in_order if call_id in n["resourceUrl"]]
        deliver(*mine, message_id=f"o-{seed}-{i}")
    expected = outcome(stream)

    prepare(stream)
    shuffled = interleave(rng, stream.chains)
    batches = [shuffled[i : i + batch] for i in range(0, len(shuffled), batch)]
    deliveries = [(f"m-{seed}-{i}", b) for i, b in enumerate(batches)]
    # Every batch is delivered twice, the second time anywhere after the first.
    plan = list(deliveries)
    for d in deliveries:
        plan.insert(rng.randrange(plan.index(d) + 1, len(plan) + 1), d)
    for message_id, notifications in plan:
        deliver(*notifications, message_id=message_id)

    assert outcome(stream) == expected
