"""One outcome for a call nobody answered: the history's row and filter, the
reports' outcomes and the board's KPI strip classify an incoming call that rang
out or whose caller hung up the same way (``states.call_outcome``)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

import pytest

from callbot.calls.models import Action, Call
from callbot.calls.states import ActionStatus, CallOutcome
from dashboard import reports
from dashboard.history_query import (
    HistoryFilters,
    Sort,
    history_page,
    history_rows,
    matching_calls,
)
from dashboard.kpis import board_kpis
from tests.factories import ActionFactory, CallFactory

pytestmark = pytest.mark.django_db


def ended_unanswered(code: int | None, subcode: int | None, **fields: object) -> Call:
    """An incoming call that rang and ended without being answered."""
    call: Call = CallFactory(direction="incoming", state="incoming", **fields)
    call.state = "terminated"
    call.terminated_at = timezone.now()
    call.result_code, call.result_subcode = code, subcode
    call.save()
    return call


def test_a_call_that_rang_out_or_was_hung_up_is_abandoned_everywhere() -> None:
    rang_out = ended_unanswered(408, 1106)  # Teams' 15 s answer window passed
    hung_up = ended_unanswered(200, 540000)  # the caller hung up while it rang
    rejected = ended_unanswered(None, None)
    ActionFactory(call=rejected, kind=Action.Kind.REJECT, status=ActionStatus.COMPLETED)
    rejected.save()
    answered: Call = CallFactory(
        direction="incoming",
        state="terminated",
        established_at=timezone.now() - timedelta(minutes=1),
        terminated_at=timezone.now(),
    )
    abandoned = {rang_out.pk, hung_up.pk}

    # History: the row's word, and the filter finds them.
    rows = {r.id: r for r in history_rows(list(Call.objects.all()))}
    assert {pk: rows[pk].outcome_label for pk in abandoned} == dict.fromkeys(
        abandoned, "Abandoned"
    )
    assert rows[rejected.pk].outcome_label == "Not answered"
    assert rows[answered.pk].outcome_label == "Answered"
    calls = matching_calls(HistoryFilters(outcome=CallOutcome.ABANDONED))
    assert {c.pk for c in history_page(calls, Sort.NEWEST).calls} == abandoned

    # Reports: the same calls are the "Abandoned" row.
    today = timezone.now().astimezone(ZoneInfo("UTC")).date()
    period = reports.Period(today, today, ZoneInfo("UTC"))
    table = reports.outcomes(Call.objects.all(), period)
    counts = {row[0]: row[1] for row in table.rows}
    assert counts["Abandoned"] == len(abandoned)
    assert counts["Rejected"] == 1

    # The board's KPI strip: the same count in its last hour.
    assert board_kpis()["abandoned_hour"] == len(abandoned)


@pytest.mark.django_db(transaction=True)
def test_stored_calls_that_rang_out_become_abandoned_by_the_migration() -> None:
    old = ("calls", "0032_call_party")
    new = ("calls", "0033_call_outcome_abandoned")
    executor = MigrationExecutor(connection)
    executor.migrate([old])
    apps = executor.loader.project_state([old]).apps
    OldCall, OldAction = (
        apps.get_model("calls", "Call"),
        apps.get_model("calls", "Action"),
    )
    ended = {"direction": "incoming", "state": "terminated"}
    rang_out = OldCall.objects.create(
        graph_key="a", outcome="failed", result_code=408, result_subcode=1106, **ended
    )
    rejected = OldCall.objects.create(graph_key="b", outcome="unanswered", **ended)
    OldAction.objects.create(call=rejected, kind="reject", status="completed")
    dropped = OldCall.objects.create(
        graph_key="c", outcome="failed", result_code=500, result_subcode=1005, **ended
    )

    executor = MigrationExecutor(connection)
    executor.migrate([new])
    executor.loader.build_graph()
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())

    outcome = dict(Call.objects.values_list("pk", "outcome"))
    assert (outcome[rang_out.pk], outcome[rejected.pk], outcome[dropped.pk]) == (
        "abandoned",
        "unanswered",
        "failed",
    )
