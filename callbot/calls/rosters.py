"""Rosters: who is in a call, from full and delta participant notifications.

A full roster is diffed against the present participants keyed by participant id;
a delta roster (or a full one whose entries carry ``rosterSequenceNumber``) is
applied entry by entry, an entry no newer than the stored one ignored; a full
roster without sequence numbers changes no entry a delta sequenced; people who
leave are marked left, never deleted; a roster of an ended call is ignored.
Rows are loaded once per batch, for all its calls in one query (``load_rosters``).

Each row keeps the digest of the roster entry it last took (``entry_digest``,
salted with what else ``_fill`` reads: the bot's participant id and our app
id). An entry whose digest is the row's is skipped before it is parsed or the
row built: taking the same entry again would change nothing. So a full roster
of a thousand people with one change parses one entry and builds one row. A
change that does not come from an entry (leaving by absence, the call's end)
clears the digest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings

from callbot.calls import kinds, rostercache
from callbot.calls.callwork import CallWork, load_batch_rows, state_of
from callbot.calls.models import Action, Call, Participant
from callbot.calls.states import ActionStatus, CallKind, CallState
from callbot.calls.storedrows import AT_DIGEST, AT_LEFT
from callbot.graph.notifications import Notification, ResourceKind, Roster
from callbot.graph.resources import (
    ParticipantResource,
    ResourceFormatError,
    normalise_id,
)

logger = logging.getLogger(__name__)


def end_roster(item: CallWork, now: datetime) -> None:
    """The bot's leg ended: nobody is present in it any more."""
    item.load_rows(set(), all_present=True)
    for key, p in item.all_rows().items():
        if p.left_at is not None:
            continue
        item.participants.pop(key, None)
        item.remember(p)
        before = state_of(p)
        p.left_at = now
        p.removed_reason = p.removed_reason or "call_ended"
        item.redigest(p, "")
        item.left[key] = p
        item.mutations += 1
        item.note_change(p, before, now)


def _bot_key(call: Call) -> str:
    return normalise_id(call.my_participant_id) if call.my_participant_id else ""


def _fill(p: Participant, r: ParticipantResource, call: Call) -> None:
    identity = r.identity
    if identity.kind != "unknown":
        p.identity_kind = identity.kind
        p.identity_id = identity.id[:128]
        p.display_name = identity.display_name[:255]
        p.identity_tenant_id = identity.tenant_id[:64]
    p.is_bot = p.graph_key == _bot_key(call) or (
        identity.kind == "application" and identity.id == settings.GRAPH_CLIENT_ID
    )
    if r.is_muted is not None:
        p.is_muted = r.is_muted
    if r.is_in_lobby is not None:
        p.is_in_lobby = r.is_in_lobby
    if r.media_streams is not None:
        p.media_streams = [s.to_json() for s in r.media_streams]
        p.is_sharing_screen = any(s.is_sending_screen for s in r.media_streams)
    if r.roster_sequence_number is not None:
        p.roster_sequence = r.roster_sequence_number


def entry_salt(call: Call) -> bytes:
    """What an entry's effect depends on besides the entry (``_fill``)."""
    return f"{_bot_key(call)}\x1f{settings.GRAPH_CLIENT_ID}".encode()


def load_rosters(
    work: Mapping[str, CallWork], notifications: Iterable[Notification]
) -> None:
    """Load, in one query for the whole batch, the participant rows its roster
    notifications will need: the ids they name and, for a full roster, everyone
    present (``apply_roster`` then finds them loaded). The rows every roster
    will skip come without what only building them needs (``_unchanged``)."""
    needs: dict[str, tuple[set[str], bool]] = {}
    rosters: dict[str, list[Roster]] = {}
    for n in notifications:
        if n.roster is None or n.kind is not ResourceKind.PARTICIPANTS:
            continue
        keys, everyone = needs.get(n.call_key, (set(), False))
        keys.update(k for k in n.roster.keys if k)
        needs[n.call_key] = (keys, everyone or not n.roster.is_delta)
        rosters.setdefault(n.call_key, []).append(n.roster)
    unchanged = {
        work[k].call.pk: _unchanged(work[k].call, rs) for k, rs in rosters.items()
    }
    plan: list[tuple[CallWork, set[str], bool]] = []
    known: dict[int, dict[str, tuple[Any, ...]]] = {}
    for k, (keys, everyone) in needs.items():
        item = work[k]
        kept = _recall(item) if everyone else None
        if kept is not None:
            # The call's rows as this process last wrote them: those the
            # batch skips are taken as they are, the others read by key.
            same = unchanged[item.call.pk]
            known[item.call.pk] = {
                key: row for key, row in kept.items() if row[AT_DIGEST] in same
            }
            present = {key for key, row in kept.items() if row[AT_LEFT] is None}
            keys = (keys | present) - known[item.call.pk].keys()
            everyone = False
        plan.append((item, keys, everyone))
    load_batch_rows(plan, unchanged, known)


def _recall(item: CallWork) -> dict[str, tuple[Any, ...]] | None:
    """The rows ``rostercache`` keeps for ``item``'s call, if the batch has
    loaded none of its rows yet."""
    if item.present_loaded or item.stored is not None or item.rows:
        return None
    return rostercache.recall(item.call)


def _unchanged(call: Call, rosters: list[Roster]) -> set[str]:
    """The entry digests of the rows ``rosters`` (one call's, in a batch) leave
    alone: an entry that every one of them sending it sends the same, of
    someone every full one names. A row that took that entry last is skipped by
    each (``apply_roster``), so it need not be built."""
    salt = entry_salt(call)
    if len(rosters) == 1 and len(set(rosters[0].keys)) == len(rosters[0].keys):
        # The usual batch: one roster naming each person once.
        roster = rosters[0]
        same = set(roster.entry_digests(salt))
        if "" in roster.keys:  # an invitee without an id: no row to skip
            same.discard(roster.entry_digests(salt)[roster.keys.index("")])
        return same
    sent: dict[str, str | None] = {}
    named: list[set[str]] = []
    for roster in rosters:
        for key, digest in zip(roster.keys, roster.entry_digests(salt), strict=True):
            if key:
                sent[key] = digest if sent.get(key, digest) == digest else None
        if not roster.is_delta:
            named.append(set(roster.keys))
    return {
        digest
        for key, digest in sent.items()
        if digest is not None and all(key in keys for keys in named)
    }


def unreadable_entry(item: CallWork | None, roster: Roster) -> str | None:
    """Why an entry of ``roster`` cannot be read (naming the entry by position
    and id), or None. Only entries this call's loaded rows have not taken
    already are read (all of them for a call not stored yet, ``item`` None): the
    others were read when first taken."""
    if item is None:
        untaken: Iterable[int] = range(len(roster.entries))
    else:
        untaken = item.untaken(roster.keys, roster.entry_digests(entry_salt(item.call)))
    for i in untaken:
        try:
            roster.participant(i)
        except ResourceFormatError as exc:
            # Which of (perhaps a thousand) entries, by position and id.
            who = roster.ids[i]
            named = f" (id {who[:100]})" if who else ""
            return f"participant {i}{named}: {exc}"
    return None


def apply_roster(item: CallWork, roster: Roster, now: datetime) -> None:
    call = item.call
    if call.state == CallState.TERMINATED:
        # The bot's leg ended and everyone was marked left (end_roster); a roster
        # arriving now is a late one (a redelivery under a new message id), and
        # would bring people back into an ended call.
        logger.info(
            "ignored roster of an ended call",
            extra={"call_id": call.pk, "graph_call_id": call.graph_id},
        )
        return
    if roster.is_delta and not call.delta_roster:
        item.set("delta_roster", True)
    # Entries with a null id are invitees not yet here.
    keys = {k for k in roster.keys if k}
    item.load_rows(keys, all_present=not roster.is_delta)
    digests = roster.entry_digests(entry_salt(call))

    # A full roster without sequence numbers in a delta-roster call cannot be
    # placed among the deltas (an old one redelivered, or one sent before delta
    # mode began): it changes no entry a delta sequenced, and removes nobody.
    unordered = not roster.is_delta and call.delta_roster
    # The entries whose row took them last are left out at once, unless a
    # person is named twice (the first entry taken changes the row the
    # second is compared with).
    if len(keys) == len(roster.keys) - roster.keys.count(""):
        indices: Iterable[int] = item.untaken(roster.keys, digests)
    else:
        indices = range(len(roster.keys))
    for i in indices:
        key = roster.keys[i]
        if not key:
            continue
        seen = item.glance(key)
        if seen is not None:
            stored_sequence, taken = seen
            sequence = roster.sequences[i]
            if roster.is_delta and sequence is not None and sequence <= stored_sequence:
                continue  # an older or repeated delta entry
            if unordered and stored_sequence:
                continue
            if taken == digests[i]:
                continue  # the entry this row took last: nothing would change
        _take(item, roster, i, key, digests[i], now)
    if not roster.is_delta:
        for key in [k for k in item.present_keys() if k not in keys]:
            p = item.row(key)
            if p is None or (unordered and p.roster_sequence):
                continue
            item.remember(p)
            gone = state_of(p)
            p.left_at = now
            p.removed_reason = "left"
            item.redigest(p, "")
            item.note_change(p, gone, now)
            item.participants.pop(key, None)
            item.left[key] = p
            item.mutations += 1
    if (
        roster.sequence_number is not None
        and roster.sequence_number > call.roster_sequence
    ):
        if (
            roster.is_delta
            and call.roster_sequence
            and roster.sequence_number > call.roster_sequence + 1
        ):
            logger.warning(
                "delta roster gap: %d after %d",
                roster.sequence_number,
                call.roster_sequence,
                extra={"call_id": call.pk, "graph_call_id": call.graph_id},
            )
        item.set("roster_sequence", roster.sequence_number)
    if call.kind == CallKind.PEER_TO_PEER and not roster.is_delta and len(keys) > 2:
        item.set("kind", CallKind.GROUP.value)  # escalated by a third person


def _take(
    item: CallWork, roster: Roster, index: int, key: str, digest: str, now: datetime
) -> None:
    """Apply entry ``index`` of ``roster`` to the row of ``key`` (new if none)."""
    call = item.call
    r = roster.participant(index)
    p = item.row(key)
    if p is None:
        p = Participant(
            call=call,
            graph_id=(roster.ids[index] or "")[:64],
            graph_key=key,
            joined_at=now,
        )
        item.rows[key] = p
        item.absent.discard(key)
        before: tuple[Any, ...] | None = None
    else:
        before = state_of(p)
        item.remember(p)
    _fill(p, r, call)
    if r.removed_reason is not None:
        if p.left_at is None:
            p.left_at = now
        p.removed_reason = r.removed_reason[:64]
    elif p.left_at is not None:
        p.left_at = None  # back in the roster
        p.removed_reason = ""
    item.redigest(p, digest)
    if before is not None and before == state_of(p):
        return
    item.mutations += 1
    item.note_change(p, before, now)
    if p.left_at is not None:
        item.participants.pop(key, None)
        item.left[key] = p
    else:
        item.left.pop(key, None)
        item.participants[key] = p


def apply_hold(item: CallWork, action: Action, now: datetime) -> None:
    participant_id = str((action.parameters or {}).get("participant_id", ""))
    if not participant_id:
        return
    if _newer_hold(item, action, participant_id):
        # The bot asked for hold music and to stop it in this order; an older
        # request finishing late does not undo the newer one.
        return
    key = normalise_id(participant_id)
    item.load_rows({key}, all_present=False)
    p = item.row(key)
    if p is None or p.left_at is not None:
        return
    item.remember(p)
    before = state_of(p)
    p.on_hold = kinds.HOLD_KINDS[action.kind]
    item.participants[key] = p
    item.note_change(p, before, now, cause=action)


def _newer_hold(item: CallWork, action: Action, participant_id: str) -> bool:
    """Whether a hold action asked for after ``action``, for the same participant,
    has completed already (in this batch or before)."""

    def same(a: Action) -> bool:
        return (
            a.pk > action.pk
            and a.kind in kinds.HOLD_KINDS
            and a.status == ActionStatus.COMPLETED
            and str((a.parameters or {}).get("participant_id", "")) == participant_id
        )

    if any(same(a) for a in item.actions):
        return True
    return Action.objects.filter(
        call=item.call,
        kind__in=list(kinds.HOLD_KINDS),
        status=ActionStatus.COMPLETED,
        pk__gt=action.pk,
        parameters__participant_id=participant_id,
    ).exists()
