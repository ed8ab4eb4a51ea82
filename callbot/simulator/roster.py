"""Roster notifications for group calls and meetings, full and delta (contract §4.1).

Full mode (the default): every change sends ``updated`` on ``.../participants`` with
``resourceData`` = the whole current roster, the bot included (contract §7.6). It is
rendered lazily at send time and an unsent one is superseded by a newer one (see
``delivery.py``), so a 1,000-person meeting does not render 1,000 rosters a second.

Delta mode (``callOptions.isDeltaRosterEnabled``): MODELLED, NOT DOCUMENTED. Microsoft
documents the types (``deltaParticipants``, ``rosterSequenceNumber``, ``removedState``)
but no wire example, so the shape below is our decision, shared with Callbot's client:
``changeType`` ``updated``, ``resourceUrl`` ``/communications/calls/{id}/participants``,
``resourceData`` = ``{"@odata.type": "#microsoft.graph.deltaParticipants",
"sequenceNumber": n, "participants": [changed entries only]}``; ``sequenceNumber``
increases per call; each entry carries ``rosterSequenceNumber`` = the sequence in which
it last changed; a participant who left carries ``removedState: {"reason": "left"}``
(``"removed"`` when the bot removed them).
"""

from __future__ import annotations

from typing import Any

from callbot.simulator.delivery import Notification
from callbot.simulator.model import Call, Participant
from callbot.simulator.notices import envelope


def full_roster(call: Call) -> Notification:
    """A lazily rendered full-roster notification for ``call``."""

    def render() -> dict[str, Any]:
        entries = [p.to_json() for p in call.conversation.participants.values()]
        return envelope(call, "/participants", "updated", entries)

    return Notification(
        call.id,
        call.conversation.chain_id,
        call.callback_uri,
        render,
        kind="roster",
        full_roster=True,
    )


def delta_roster(
    call: Call,
    changed: list[Participant],
    removed: list[tuple[Participant, str]],
) -> Notification:
    """A delta-roster notification (modelled; see the module docstring)."""
    call.roster_sequence += 1
    sequence = call.roster_sequence
    entries: list[dict[str, Any]] = []
    for participant in changed:
        call.roster_marks[participant.id] = sequence
        entry = dict(participant.to_json())
        entry["rosterSequenceNumber"] = sequence
        entries.append(entry)
    for participant, reason in removed:
        call.roster_marks.pop(participant.id, None)
        entry = dict(participant.to_json())
        entry["rosterSequenceNumber"] = sequence
        entry["removedState"] = {
            "@odata.type": "#microsoft.graph.removedState",
            "reason": reason,
        }
        entries.append(entry)
    data = {
        "@odata.type": "#microsoft.graph.deltaParticipants",
        "sequenceNumber": sequence,
        "participants": entries,
    }
    payload = envelope(call, "/participants", "updated", data)
    return Notification(
        call.id,
        call.conversation.chain_id,
        call.callback_uri,
        lambda: payload,
        kind="roster",
    )


def participants_json(call: Call) -> list[dict[str, Any]]:
    """The roster as ``GET .../participants`` returns it (with sequence numbers in
    delta mode, so a client can resync from it)."""
    entries = []
    for participant in call.conversation.participants.values():
        entry = participant.to_json()
        if call.delta_roster and participant.id in call.roster_marks:
            entry = dict(entry)
            entry["rosterSequenceNumber"] = call.roster_marks[participant.id]
        entries.append(entry)
    return entries
