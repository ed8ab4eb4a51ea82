"""The applier thread's turn beside the webhook's requests (callbot/calls/arrivals.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

from callbot.calls import arrivals


def _waited(turns: Any, group: int = 20) -> float:
    started = time.monotonic()
    turns.wait_turn(group)
    return time.monotonic() - started


def test_with_no_request_in_flight_the_applier_goes_at_once() -> None:
    turns = arrivals._Arrivals()
    with turns.arriving():
        pass

    assert _waited(turns) < 0.05


def test_the_applier_waits_for_a_lone_request_to_be_answered(settings: Any) -> None:
    settings.WEBHOOK_INBOX_YIELD_MS = 5_000
    turns = arrivals._Arrivals()
    answered = threading.Event()

    def request() -> None:
        with turns.arriving():
            time.sleep(0.15)
            answered.set()

    thread = threading.Thread(target=request)
    thread.start()
    time.sleep(0.02)  # in flight
    turns.wait_turn(20)

    assert answered.is_set()
    thread.join()


def test_in_a_stream_the_applier_waits_for_a_pause(settings: Any) -> None:
    settings.WEBHOOK_INBOX_YIELD_MS = 5_000
    turns = arrivals._Arrivals()
    for _ in range(3):  # close behind one another
        with turns.arriving():
            pass
    ended = time.monotonic()

    turns.wait_turn(20)

    assert time.monotonic() - ended >= arrivals.QUIET_SECONDS


def test_a_whole_group_stored_is_the_applier_s_turn(settings: Any) -> None:
    settings.WEBHOOK_INBOX_YIELD_MS = 5_000
    turns = arrivals._Arrivals()
    with turns.arriving():
        for _ in range(4):
            turns.stored()

        assert _waited(turns, group=4) < 1


def test_a_stream_that_never_pauses_waits_the_applier_at_most_the_setting(
    settings: Any,
) -> None:
    settings.WEBHOOK_INBOX_YIELD_MS = 100
    turns = arrivals._Arrivals()
    with turns.arriving():
        waited = _waited(turns)

    assert 0.09 <= waited < 1
