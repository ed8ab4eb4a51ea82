"""Whom the bot called or passed a call to: shown in the history's row and its
exports, and found by the history's search by name, id or number, as a caller
is."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

import pytest

from callbot.calls import perform
from callbot.calls.models import Action, Call
from callbot.calls.params import one_target
from dashboard.history_query import (
    HistoryFilters,
    Sort,
    history_page,
    history_rows,
    matching_calls,
)
from dashboard.permissions import Role
from dashboard.roles import upsert_user
from tests.factories import ActionFactory, CallFactory, MeetingFactory
from tests.support.fake_graph import FakeGraph

pytestmark = pytest.mark.django_db

PROBE = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
K = Action.Kind


def performed(kind: str, params: dict[str, Any], call: Call | None = None) -> Action:
    action: Action = ActionFactory(call=call, kind=kind, parameters=params)
    assert perform.perform(action.pk) is None
    action.refresh_from_db()
    assert action.status in ("sent", "completed"), action.error_message
    return action


def found(q: str, **filters: Any) -> list[int]:
    calls = matching_calls(HistoryFilters(q=q, **filters))
    return [c.pk for c in history_page(calls, Sort.NEWEST).calls]


def placed_and_transferred() -> Call:
    """A supervisor calls Probe Person (by user id), then transfers the call to
    +1 425 555 0199."""
    target, _ = one_target(
        {"target": {"user_id": PROBE, "display_name": "Probe Person"}}, None
    )
    placed = performed(K.PLACE_CALL, target)
    assert placed.call is not None
    call = placed.call
    Call.objects.filter(pk=call.pk).update(state="established", source_display="")
    call.refresh_from_db()
    performed(
        K.TRANSFER, {"target": {"phone": "+14255550199", "display_name": ""}}, call
    )
    call.refresh_from_db()
    return call


def test_a_placed_and_transferred_call_is_found_by_whom_it_went_to(
    graph: FakeGraph,
) -> None:
    call = placed_and_transferred()
    CallFactory(direction="outgoing", source_display="")  # another call, not found

    for q in (
        "Probe Person",
        "probe",
        PROBE,
        PROBE.upper(),
        "4255550199",
        "+1 425 555 0199",
    ):
        assert found(q) == [call.pk], q
    assert found("Probe Person", direction="outgoing") == [call.pk]
    assert found("+1 425 555 0198") == []
    (row,) = history_rows([call])
    assert row.caller == "Probe Person, +14255550199"
    assert row.caller_id == f"{PROBE} +14255550199"


def test_an_incoming_call_passed_on_shows_the_caller_then_whom_it_went_to(
    graph: FakeGraph,
) -> None:
    call = CallFactory(
        direction="incoming",
        state="established",
        source_display="Ana Lopez",
        source_id="+14255550100",
    )
    performed(
        K.TRANSFER, {"target": {"user_id": PROBE, "display_name": "Probe Person"}}, call
    )
    call.refresh_from_db()
    assert found("probe person") == [call.pk]
    assert found(PROBE) == [call.pk]
    (row,) = history_rows([call])
    assert row.caller == "Ana Lopez → Probe Person"


def test_the_history_page_and_csv_export_show_whom_an_outgoing_call_went_to(
    graph: FakeGraph,
) -> None:
    call = placed_and_transferred()
    client = Client()
    client.force_login(upsert_user("carol", Role.AUDITOR, password="carol-pw-12345")[0])

    page = client.get("/history/", {"q": "4255550199", "direction": "outgoing"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 call matches" in text or "1 call match" in text
    assert "Probe Person, +14255550199" in text

    export = client.get("/history/export.csv", {"q": "Probe Person"})
    (row,) = csv.DictReader(io.StringIO(b"".join(export).decode()))
    assert int(row["id"]) == call.pk
    assert row["caller"] == "Probe Person, +14255550199"
    assert row["caller_id"] == f"{PROBE} +14255550199"


def test_a_meeting_joined_by_its_link_has_a_subject_in_the_history(
    graph: FakeGraph,
) -> None:
    meeting = MeetingFactory(subject="")
    joined = performed(K.JOIN_MEETING, {"meeting_id": meeting.pk})
    assert joined.call is not None
    (row,) = history_rows([joined.call])
    assert row.subject == "Teams meeting"


@pytest.mark.django_db(transaction=True)
def test_calls_stored_before_the_party_columns_are_filled_by_the_migration() -> None:
    old = ("calls", "0031_alert_ringing_within_answer_window")
    new = ("calls", "0032_call_party")
    executor = MigrationExecutor(connection)
    executor.migrate([old])
    apps = executor.loader.project_state([old]).apps
    OldCall, OldAction = (
        apps.get_model("calls", "Call"),
        apps.get_model("calls", "Action"),
    )
    placed = OldCall.objects.create(
        graph_id="placed-1",
        graph_key="placed1",
        direction="outgoing",
        targets=[{"user_id": PROBE, "display_name": "Probe Person"}],
    )
    OldAction.objects.create(
        call=placed,
        kind="transfer",
        status="completed",
        parameters={"target": {"phone": "+14255550199", "display_name": ""}},
    )
    refused = OldCall.objects.create(
        graph_id="in-1", graph_key="in1", direction="incoming"
    )
    OldAction.objects.create(
        call=refused,
        kind="transfer",
        status="failed",
        parameters={"target": {"phone": "+14255550111", "display_name": ""}},
    )

    executor = MigrationExecutor(connection)
    executor.migrate([new])
    executor.loader.build_graph()
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())

    call = Call.objects.get(graph_key="placed1")
    assert (call.party_display, call.party_ids) == (
        "Probe Person, +14255550199",
        f" {PROBE} +14255550199 ",
    )
    assert Call.objects.get(graph_key="in1").party_ids == ""
    for q in ("Probe Person", PROBE, "4255550199"):
        assert found(q) == [call.pk], q


def test_a_call_teams_ended_before_its_reject_was_answered_is_not_abandoned(
    graph: FakeGraph,
) -> None:
    call = CallFactory(direction="incoming", state="incoming")
    action: Action = ActionFactory(
        call=call, kind=K.REJECT, parameters={"reason": "busy"}
    )
    call.state = "terminated"  # the bare "deleted" came first
    call.save()
    assert Call.objects.get(pk=call.pk).outcome == "abandoned"

    assert perform.perform(action.pk) is None

    assert Call.objects.get(pk=call.pk).outcome == "unanswered"
