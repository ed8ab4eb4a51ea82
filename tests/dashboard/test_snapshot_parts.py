"""Snapshots in bounded parts: whatever the number of live calls or people, no
frame the socket sends is over ``PART_CHARS``, and the parts add up to the whole."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from callbot.calls.models import Call, Participant
from dashboard import snapshots
from dashboard.snapshots import PART_CHARS, ROW_CHARS, snapshot_parts, stream_parts
from tests.dashboard import crowd
from tests.dashboard.sockets import gather_snapshot, open_socket

CALLS = 3000
PEOPLE = 5000


def test_parts_split_the_lists_in_order_and_repeat_the_keys_named() -> None:
    head = {"type": "call.snapshot", "snapshot": "7", "call_id": 1, "version": 9}
    lists = {
        "participants": [{"id": f"p{n}", "name": "x" * 50} for n in range(100)],
        "timeline": [{"text": f"t{n}"} for n in range(30)],
    }

    parts = snapshot_parts(head, lists, repeat=("type", "snapshot"), part_chars=1000)

    assert len(parts) > 5
    assert [(p["part"], p["parts"], p["more"]) for p in parts] == [
        (n, len(parts), n < len(parts)) for n in range(1, len(parts) + 1)
    ]
    assert all(len(_json(p)) <= 1000 for p in parts)
    assert parts[0]["version"] == 9
    assert all(
        set(p)
        == {"type", "snapshot", "participants", "timeline", "part", "parts", "more"}
        for p in parts[1:]
    )
    for name, rows in lists.items():
        assert [row for p in parts for row in p[name]] == rows


def test_a_stream_yields_each_part_before_reading_the_rows_after_it() -> None:
    read: list[int] = []

    def rows() -> Any:
        for n in range(1000):
            read.append(n)
            yield {"id": n, "name": "x" * 40}

    stream = stream_parts(
        {"type": "board.snapshot", "snapshot": "1"},
        {"calls": rows()},
        repeat=("type", "snapshot"),
        part_chars=2000,
    )
    first = next(stream)
    # The first part left once full: the rows beyond the next were not read yet.
    assert first["more"] is True
    assert "parts" not in first
    assert len(read) == len(first["calls"]) + 1
    rest = list(stream)
    assert [p["more"] for p in rest] == [True] * (len(rest) - 1) + [False]
    assert rest[-1]["parts"] == len(rest) + 1
    assert [r["id"] for p in [first, *rest] for r in p["calls"]] == list(range(1000))
    assert all(len(_json(p)) <= 2000 for p in [first, *rest])


def test_one_part_when_everything_fits() -> None:
    parts = snapshot_parts(
        {"type": "board.snapshot"}, {"calls": [{"id": 1}]}, repeat=()
    )
    assert parts == [
        {
            "type": "board.snapshot",
            "calls": [{"id": 1}],
            "part": 1,
            "more": False,
            "parts": 1,
        }
    ]


def test_a_row_too_long_for_any_part_is_cut_to_fit() -> None:
    row = {"id": 1, "result": "é" * 100_000, "sharing": ["Ana"] * 5000}
    parts = snapshot_parts({"type": "board.snapshot"}, {"calls": [row]}, repeat=())

    (cut,) = parts[0]["calls"]
    assert len(_json(cut)) <= ROW_CHARS
    assert cut["id"] == 1
    assert cut["result"].startswith("ééé")
    assert cut["result"].endswith("…")
    assert cut["sharing"] == ["Ana"] * snapshots.ROW_LIST_ITEMS


def _json(value: Any) -> str:
    return json.dumps(value)


# --- over the socket ------------------------------------------------------------------


async def receive_snapshot_frames(socket: WebsocketCommunicator) -> list[str]:
    """Every frame of the next snapshot, as sent."""
    frames = [(await socket.receive_output(timeout=30))["text"]]
    while json.loads(frames[-1])["more"]:
        frames.append((await socket.receive_output(timeout=30))["text"])
    assert json.loads(frames[-1])["parts"] == len(frames)
    return frames


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live")
async def test_a_board_of_3000_calls_and_a_call_of_5000_people_stay_under_the_bound(
    carol: Any, record_property: Any
) -> None:
    big = await database_sync_to_async(crowd.populate)(CALLS, PEOPLE)
    socket = await open_socket(carol)

    started = time.perf_counter()
    await socket.send_json_to({"type": "subscribe", "board": True})
    board_frames = await receive_snapshot_frames(socket)
    board_seconds = time.perf_counter() - started
    await socket.send_json_to({"type": "subscribe", "call": big})
    call_frames = await receive_snapshot_frames(socket)
    await socket.disconnect()

    board = [json.loads(f) for f in board_frames]
    call = [json.loads(f) for f in call_frames]
    sizes = [len(f.encode()) for f in board_frames + call_frames]
    record_property("board_parts", len(board))
    record_property("call_parts", len(call))
    record_property("largest_frame", max(sizes))
    record_property("board_snapshot_seconds", round(board_seconds, 2))
    # The whole board would be about 1.5 MB and the roster about 1.9 MB.
    assert max(sizes) <= PART_CHARS
    assert sum(sizes) > 3 * 2**20
    assert len({p["snapshot"] for p in board}) == 1
    assert len({p["snapshot"] for p in call}) == 1
    assert len({p["version"] for p in call}) == 1

    rows = [row for p in board for row in p["calls"]]
    live = await database_sync_to_async(
        lambda: list(
            Call.objects.exclude(state="terminated").values_list("pk", flat=True)
        )
    )()
    assert sorted(r["id"] for r in rows) == sorted(live)
    assert len(rows) == CALLS
    people = [row for p in call for row in p["participants"]]
    assert len(people) == PEOPLE == len({p["id"] for p in people})
    assert call[0]["call"]["subject"] == crowd.MEETING_SUBJECT
    assert call[0]["call"]["participant_count"] == PEOPLE


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live")
async def test_a_parted_snapshot_carries_its_version_in_every_part(
    carol: Any, meeting_call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small parts, so that a three-person call spans several.
    monkeypatch.setattr(snapshots, "PART_CHARS", 1200)
    socket = await open_socket(carol)
    await socket.send_json_to({"type": "subscribe", "call": meeting_call.pk})
    whole = await gather_snapshot(socket)
    await socket.disconnect()

    assert whole["parts"] > 1
    assert whole["version"] == 2
    names = sorted(p["name"] for p in whole["participants"])
    assert names == ["Ana Lopez", "Helpdesk Bot", "Lee Chen"]
    present = await Participant.objects.filter(call=meeting_call).acount()
    assert len(whole["participants"]) == present
