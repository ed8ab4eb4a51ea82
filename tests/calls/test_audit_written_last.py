"""``audit.written_last``: a transaction's entries are appended when its work is
done, so the chain's lock is held from then to the commit only."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls import audit, lifecycle
from callbot.calls.models import AuditEntry, Call
from tests.factories import ActionFactory, CallFactory


def _sequences() -> list[tuple[int, str]]:
    return list(
        AuditEntry.objects.order_by("sequence").values_list("sequence", "target")
    )


@pytest.mark.django_db
def test_entries_are_appended_after_the_blocks_other_statements() -> None:
    call = CallFactory()
    with (
        CaptureQueriesContext(connection) as queries,
        transaction.atomic(),
        audit.written_last(),
    ):
        entry = audit.record(None, "hang_up", "one", call, outcome="x", detail={})
        assert entry.pk is None
        Call.objects.filter(pk=call.pk).update(version=7)
    statements = [q["sql"] for q in queries.captured_queries]
    update = next(i for i, s in enumerate(statements) if "UPDATE" in s)
    insert = next(i for i, s in enumerate(statements) if "calls_auditentry" in s)
    assert update < insert
    assert entry.pk is not None
    assert _sequences() == [(1, "one")]


@pytest.mark.django_db
def test_a_nested_block_hands_its_entries_to_the_outer_one_in_order() -> None:
    with transaction.atomic(), audit.written_last():
        audit.record(None, "a", "first", outcome="x", detail={})
        with transaction.atomic(), audit.written_last():
            audit.record(None, "a", "second", outcome="x", detail={})
        assert AuditEntry.objects.count() == 0
        audit.record(None, "a", "third", outcome="x", detail={})
    assert _sequences() == [(1, "first"), (2, "second"), (3, "third")]


def _refused_in_a_block() -> None:
    with transaction.atomic(), audit.written_last():
        audit.record(None, "a", "dropped", outcome="x", detail={})
        raise RuntimeError("refused")


def _rolled_back_in_a_savepoint(saved: list[int | None]) -> None:
    with transaction.atomic():
        saved.append(audit.record(None, "a", "gone", outcome="x", detail={}).pk)
        raise RuntimeError("rolled back")


@pytest.mark.django_db
def test_a_failed_nested_block_drops_its_entries_with_its_savepoint() -> None:
    with transaction.atomic(), audit.written_last():
        audit.record(None, "a", "kept", outcome="x", detail={})
        with pytest.raises(RuntimeError):
            _refused_in_a_block()
    assert _sequences() == [(1, "kept")]


@pytest.mark.django_db
def test_an_entry_in_a_deeper_savepoint_is_appended_at_once() -> None:
    """Rolling that savepoint back must take its entry with it, so it is not held."""
    saved: list[int | None] = []
    with transaction.atomic(), audit.written_last():
        with pytest.raises(RuntimeError):
            _rolled_back_in_a_savepoint(saved)
        audit.record(None, "a", "kept", outcome="x", detail={})
    assert saved[0] is not None
    assert _sequences() == [(1, "kept")]


@pytest.mark.django_db
def test_an_entry_appended_inside_a_transaction_opens_no_savepoint() -> None:
    """Each SAVEPOINT and RELEASE is a round trip on PostgreSQL; the entry is
    rolled back with the caller's block, as the tests above show."""
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        audit.record(None, "a", "one", outcome="x", detail={})
        audit.record(None, "a", "two", outcome="x", detail={})
    assert not [q for q in queries.captured_queries if "SAVEPOINT" in q["sql"]]
    assert _sequences() == [(1, "one"), (2, "two")]


def _failed_transaction() -> None:
    with transaction.atomic():
        audit.record(None, "a", "gone", outcome="x", detail={})
        raise RuntimeError("rolled back")


@pytest.mark.django_db
def test_an_entry_in_a_failed_transaction_is_not_kept() -> None:
    with pytest.raises(RuntimeError):
        _failed_transaction()
    audit.record(None, "a", "kept", outcome="x", detail={})
    assert _sequences() == [(1, "kept")]


@pytest.mark.django_db
def test_an_outcome_held_back_still_links_the_request_recorded_before_it(
    bob: Any,
) -> None:
    call = CallFactory(kind="group")
    action = ActionFactory(call=call, kind="hang_up", status="sent", requested_by=bob)
    with transaction.atomic(), audit.written_last():
        audit.record(
            bob,
            "hang_up",
            "",
            call,
            outcome="requested",
            detail={},
            action_ref=action.pk,
        )
        lifecycle.record_outcome(action.pk, "completed")
    request, outcome = AuditEntry.objects.order_by("sequence")
    assert outcome.detail["request"] == request.sequence
    assert outcome.actor_name == "bob"


def test_written_last_needs_a_transaction() -> None:
    with pytest.raises(RuntimeError), audit.written_last():
        pass
