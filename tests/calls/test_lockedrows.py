"""Locked reads compiled once (``lockedrows.first``): the statement and the
instance are what ``QuerySet.first()`` gives, on every later call too."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.db.models import QuerySet, Subquery
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import pytest

from callbot.calls import lockedrows
from callbot.calls.models import Action, Call
from tests.factories import CallFactory

pytestmark = pytest.mark.django_db


def _locked_call(pk: int) -> QuerySet[Call]:
    return Call.objects.select_for_update(no_key=True).filter(pk=pk)


def _owner(action_id: int) -> QuerySet[Call]:
    owner = Action.objects.filter(pk=action_id).values("call_id")[:1]
    return (
        Call.objects.select_for_update(no_key=True)
        .only("id", "version")
        .filter(pk=Subquery(owner))
    )


def _fields(call: Call) -> dict[str, object]:
    return {f.attname: getattr(call, f.attname) for f in Call._meta.concrete_fields}


def test_same_statement_and_instance_as_first() -> None:
    """Each call's row comes back as ``first()`` loads it (JSON, times and
    booleans converted), through the statement ``first()`` sends."""
    calls = [
        CallFactory(
            targets=[{"identity": {"user": {"id": f"u-{i}"}}}],
            waiting_since=timezone.now() - timedelta(seconds=i),
            version=i,
        )
        for i in range(3)
    ]
    for call in calls:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as expected:
                wanted = _locked_call(call.pk).first()
            with CaptureQueriesContext(connection) as sent:
                got = lockedrows.first("test.call", _locked_call, call.pk)
        assert wanted is not None
        assert got is not None
        assert type(got) is Call
        assert got._state.db == "default"
        assert not got._state.adding
        assert _fields(got) == _fields(wanted)
        assert got.targets == [{"identity": {"user": {"id": f"u-{call.version}"}}}]
        assert [q["sql"] for q in sent.captured_queries] == [
            q["sql"] for q in expected.captured_queries
        ]


def test_deferred_fields_and_a_subquery() -> None:
    call = CallFactory(version=7)
    action = Action.objects.create(call=call, kind="play_prompt")
    with transaction.atomic():
        got = lockedrows.first("test.owner", _owner, action.pk)
    assert got is not None
    assert (got.pk, got.version) == (call.pk, 7)
    assert got.get_deferred_fields() >= {"state", "targets"}


def test_missing_row_is_none() -> None:
    with transaction.atomic():
        assert lockedrows.first("test.call", _locked_call, 10**9) is None


@pytest.mark.django_db(transaction=True)
def test_a_lock_outside_a_transaction_is_refused() -> None:
    """As ``select_for_update`` is where the database locks rows, also once the
    statement is compiled."""
    if not connection.features.has_select_for_update:
        pytest.skip("SQLite ignores select_for_update")
    call = CallFactory()
    with transaction.atomic():
        lockedrows.first("test.call", _locked_call, call.pk)
    with pytest.raises(TransactionManagementError):
        lockedrows.first("test.call", _locked_call, call.pk)


def test_an_argument_not_sent_as_a_parameter_is_refused() -> None:
    """An argument that does not reach the statement as a value (unused here)
    could not be substituted later."""
    with pytest.raises(ValueError, match="argument"):
        lockedrows.first("test.unused", lambda n: Call.objects.filter(pk=1), 3)


def _by_key(key: str) -> QuerySet[Call]:
    return (
        Call.objects.select_for_update(no_key=True)
        .filter(graph_key=key)
        .order_by("graph_key")
    )


def test_rows_by_a_text_key_as_the_queryset_gives_them() -> None:
    """A text argument (a call's Graph key) is found in the compiled statement
    and replaced on every later call; the rows are the queryset's."""
    calls = [CallFactory() for _ in range(3)]
    for call in calls:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as expected:
                wanted = list(_by_key(call.graph_key))
            with CaptureQueriesContext(connection) as sent:
                got = lockedrows.rows("test.key", _by_key, call.graph_key)
        assert [_fields(c) for c in got] == [_fields(c) for c in wanted]
        assert [c.pk for c in got] == [call.pk]
        assert [q["sql"] for q in sent.captured_queries] == [
            q["sql"] for q in expected.captured_queries
        ]
    with transaction.atomic():
        assert lockedrows.rows("test.key", _by_key, "no-such-call") == []


def test_rows_need_an_order() -> None:
    with pytest.raises(ValueError, match="ordered"):
        lockedrows.rows(
            "test.unordered", lambda pk: Action.objects.filter(pk=pk).order_by(), 1
        )


def test_present_is_the_subset_stored() -> None:
    """As ``set(filter(<field>__in=values).values_list(field, flat=True))``,
    for each number of values asked."""
    calls = [CallFactory() for _ in range(3)]
    keys = [c.graph_key for c in calls]
    for asked in ([keys[0]], [keys[1], "nope"], [*keys, "x", "y"], []):
        wanted = set(
            Call.objects.filter(graph_key__in=asked).values_list("graph_key", flat=True)
        )
        assert lockedrows.present(Call, "graph_key", asked) == wanted
    assert lockedrows.present(Call, "graph_key", [keys[2], "z"]) == {keys[2]}
