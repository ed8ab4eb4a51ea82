"""The embedded default's SQLite backend (callbot/runtime/sqlite/base.py): the
process's threads queue for SQLite's one writer on a lock of the process, held
from ``BEGIN IMMEDIATE`` to the commit or rollback, and around a write outside a
transaction, instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection, connections, transaction

import pytest

from callbot.runtime.sqlite.base import writer_lock

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write lock"),
]


def elsewhere(function: Callable[[], Any]) -> Any:
    """``function()`` on another thread (its own connection), its result."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(function())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return result[0]


def lock() -> threading.RLock:
    return writer_lock(str(connection.settings_dict["NAME"]))


def free() -> bool:
    held = lock()
    if not held.acquire(timeout=0):
        return False
    held.release()
    return True


def test_a_transaction_holds_the_write_lock_until_it_commits() -> None:
    assert elsewhere(free)
    with transaction.atomic():
        Group.objects.create(name="a")
        assert not elsewhere(free)
        with transaction.atomic():  # a savepoint takes nothing more
            Group.objects.create(name="b")
        assert not elsewhere(free)
    assert elsewhere(free)


def test_a_rollback_releases_it() -> None:
    def create_then_fail() -> None:
        with transaction.atomic():
            Group.objects.create(name="a")
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert elsewhere(free)
    assert not Group.objects.exists()


def test_a_writer_on_another_thread_waits_its_turn_and_goes_on() -> None:
    """A write outside a transaction queues on the lock and goes on once the
    transaction ahead of it commits; it was not refused, nor did it go first."""
    order: list[str] = []
    started = threading.Event()

    def write() -> None:
        started.set()
        Group.objects.filter(name="a").update(name="a, renamed")
        order.append("write")
        connections.close_all()

    thread = threading.Thread(target=write)
    with transaction.atomic():
        Group.objects.create(name="a")
        thread.start()
        assert started.wait(10)
        thread.join(0.2)
        assert thread.is_alive()  # waiting for the lock
        order.append("commit")
    thread.join(10)

    assert order == ["commit", "write"]
    assert Group.objects.get().name == "a, renamed"
    assert elsewhere(free)
