"""Snapshots and deltas carry what each call does not offer, as reason codes; the
socket's hello carries every code's sentence once."""

from __future__ import annotations

import json

import pytest

from callbot.calls import deltas
from callbot.calls.availability import REASONS, sentence, unavailable
from callbot.calls.board import refusal_key
from callbot.calls.states import CallKind, CallState
from dashboard.snapshots import board_snapshot, board_snapshot_stream, call_snapshot
from tests.factories import CallFactory

pytestmark = pytest.mark.django_db


def test_the_call_snapshot_and_board_row_carry_the_reason_codes() -> None:
    p2p = CallFactory(kind=CallKind.PEER_TO_PEER)
    meeting = CallFactory(kind=CallKind.MEETING, media_config_kind="service_hosted")

    page = call_snapshot(p2p.pk)["call"]
    rows = {row["id"]: row for row in board_snapshot()["calls"]}

    assert page["unavailable"]["mute_bot"] == "group_only"
    assert sentence("mute_bot", "group_only") == (
        "Teams lets a bot mute itself only in group calls and meetings; "
        "this is a peer-to-peer call."
    )
    assert rows[p2p.pk]["unavailable"] == page["unavailable"] == unavailable(p2p)
    assert "mute_bot" not in rows[meeting.pk]["unavailable"]
    code = rows[meeting.pk]["unavailable"]["change_screen_sharing_role"]
    assert sentence("change_screen_sharing_role", code) == (
        "Teams lets a bot change its screen-sharing role only when the app hosts "
        "the call's media; Teams hosts this call's media."
    )
    assert (page["dropped"], rows[meeting.pk]["dropped"]) == ("", "")


def test_a_row_carries_codes_not_sentences() -> None:
    """A peer-to-peer call's row carried about 800 bytes of sentences; the codes
    are a third of that, and every code is worded in ``REASONS``."""
    p2p = CallFactory(kind=CallKind.PEER_TO_PEER)
    ringing = CallFactory(kind=CallKind.PEER_TO_PEER, state=CallState.INCOMING)
    rows = {row["id"]: row for row in board_snapshot()["calls"]}

    for call in (p2p, ringing):
        codes = rows[call.pk]["unavailable"]
        assert len(json.dumps(codes, separators=(",", ":"))) < 450
        for kind, code in codes.items():
            assert sentence(kind, code) in REASONS.values()


def test_a_call_that_becomes_a_group_call_sends_its_new_reasons() -> None:
    call = CallFactory(kind=CallKind.PEER_TO_PEER)
    call.kind = CallKind.GROUP

    delta = deltas.bump(call, call_changes={"kind": "group"})
    quiet = deltas.bump(call, call_changes={"media_state_audio": "active"})

    assert "mute_bot" not in delta.call["unavailable"]
    assert delta.call["unavailable"] == unavailable(call)
    assert "unavailable" not in quiet.call


def test_the_streamed_board_names_each_rows_reasons_in_its_table() -> None:
    made = [
        CallFactory(kind=kind, media_config_kind=media, state=state)
        for kind in CallKind.values
        for media in ("app_hosted", "service_hosted", "")
        for state in (CallState.INCOMING, CallState.ESTABLISHED)
    ]

    parts = list(board_snapshot_stream("1", part_chars=2000))

    table = parts[0]["unavailable"]
    rows = {row["id"]: row for part in parts for row in part["calls"]}
    for call in made:
        key = rows[call.pk]["unavailable"]
        assert isinstance(key, str)
        # Any key whose codes are the row's (kinds alike in what they refuse
        # share one set of codes).
        assert table[key] == unavailable(call)
        assert table[refusal_key(call)] == unavailable(call)
    # Each set of reason codes once in the snapshot, not once per row.
    assert len(table) == 2 * len(CallKind.values) * len(CallState.values)


def test_a_call_answered_sends_its_new_reasons() -> None:
    call = CallFactory(kind=CallKind.GROUP, state=CallState.INCOMING)
    assert unavailable(call)["invite"] == "ringing"
    call.state = CallState.ESTABLISHED

    delta = deltas.bump(call, call_changes={"state": "established"})

    assert "invite" not in delta.call["unavailable"]
    assert delta.call["unavailable"]["answer"] == "answered"
