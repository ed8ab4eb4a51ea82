"""The ingest threads' order (callbot/calls/ingestthreads.py): a batch starts only
once every earlier batch naming one of its calls is done; batches of other calls
go beside it, so a new call's ringing is not held behind another call's work.
No database: the jobs are plain functions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from callbot.calls.ingestthreads import OrderedThreads

WAIT = 10  # seconds; only ever reached when a test fails


@pytest.fixture
def threads() -> Iterator[OrderedThreads]:
    pool = OrderedThreads(2, name="test-ingest")
    yield pool
    pool.shutdown()


class Held:
    """A job that records that it started and returns only once released."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.log.append(f"{self.name} started")
        self.started.set()
        assert self.release.wait(WAIT)
        self.log.append(f"{self.name} done")
        return self.name


def quick(log: list[str], name: str) -> Any:
    def job() -> str:
        log.append(name)
        return name

    return job


def test_a_batch_of_a_call_waits_for_the_one_before_it(
    threads: OrderedThreads,
) -> None:
    log: list[str] = []
    established = Held(log, "established")
    first = threads.submit_ordered(frozenset({"call-a"}), established)
    assert established.started.wait(WAIT)

    second = threads.submit_ordered(frozenset({"call-a"}), quick(log, "deleted"))

    assert not second.done()
    established.release.set()
    assert second.result(WAIT) == "deleted"
    assert first.result(WAIT) == "established"
    assert log == ["established started", "established done", "deleted"]


def test_a_ring_of_another_call_is_not_held_behind_it(threads: OrderedThreads) -> None:
    log: list[str] = []
    established = Held(log, "established")
    threads.submit_ordered(frozenset({"call-a"}), established)
    assert established.started.wait(WAIT)
    # Waiting for the first, on no thread.
    deleted = threads.submit_ordered(frozenset({"call-a"}), quick(log, "deleted"))

    ring = threads.submit_ordered(frozenset({"call-b"}), quick(log, "ring"))

    assert ring.result(WAIT) == "ring"
    assert not deleted.done()
    established.release.set()
    assert deleted.result(WAIT) == "deleted"
    assert log == ["established started", "ring", "established done", "deleted"]


def test_a_batch_naming_two_calls_waits_for_both(threads: OrderedThreads) -> None:
    log: list[str] = []
    a, b = Held(log, "a"), Held(log, "b")
    threads.submit_ordered(frozenset({"call-a"}), a)
    threads.submit_ordered(frozenset({"call-b"}), b)
    assert a.started.wait(WAIT)
    assert b.started.wait(WAIT)

    both = threads.submit_ordered(frozenset({"call-a", "call-b"}), quick(log, "ab"))
    a.release.set()
    assert a.started.is_set()
    assert not both.done()
    b.release.set()

    assert both.result(WAIT) == "ab"
    assert log[-1] == "ab"


def test_a_batch_whose_calls_are_unknown_waits_for_all_and_all_wait_for_it(
    threads: OrderedThreads,
) -> None:
    log: list[str] = []
    a = Held(log, "a")
    threads.submit_ordered(frozenset({"call-a"}), a)
    assert a.started.wait(WAIT)

    unknown = threads.submit_ordered(None, quick(log, "unknown"))
    later = threads.submit_ordered(frozenset({"call-b"}), quick(log, "b"))

    assert not unknown.done()
    assert not later.done()
    a.release.set()
    assert later.result(WAIT) == "b"
    assert log == ["a started", "a done", "unknown", "b"]
    # ``submit`` (an Executor's) is such a job.
    assert threads.submit(quick(log, "plain")).result(WAIT) == "plain"


def test_a_failed_batch_lets_the_next_one_of_its_call_go(
    threads: OrderedThreads,
) -> None:
    def fail() -> None:
        raise ValueError("broken batch")

    failed: Future[None] = threads.submit_ordered(frozenset({"call-a"}), fail)
    after = threads.submit_ordered(frozenset({"call-a"}), lambda: "next")

    with pytest.raises(ValueError, match="broken batch"):
        failed.result(WAIT)
    assert after.result(WAIT) == "next"


def test_many_batches_of_interleaved_calls_keep_each_calls_order(
    threads: OrderedThreads,
) -> None:
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    lock = threading.Lock()

    def job(call: str, n: int) -> None:
        with lock:
            seen[call].append(n)

    futures = [
        threads.submit_ordered(frozenset({call}), job, call, n)
        for n in range(60)
        for call in ("a", "b", "c")
        if (n + ord(call)) % 2 == 0 or call == "c"
    ]
    for future in futures:
        future.result(WAIT)

    for order in seen.values():
        assert order == sorted(order)
