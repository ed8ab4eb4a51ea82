"""Alerts: raised once per kind and call, cleared when their condition ends, and
published to the board; the rules for ringing, silent calls, failed actions and
failed keepAlives."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import pytest

from callbot.calls import alerts, lifecycle, upkeep
from callbot.calls.alertmodels import Alert, AlertKind, AlertSettings
from callbot.calls.deciding import answer_deadline
from callbot.calls.models import Call, CallEvent
from callbot.calls.states import ActionStatus
from callbot.graph.errors import GraphTransientError
from callbot.graph.limits import ANSWER_WINDOW_SECONDS
from dashboard.permissions import Role
from dashboard.roles import upsert_user
from tests.factories import ActionFactory, CallFactory
from tests.support.fake_graph import FakeGraph

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the alerts module sends to the board's group."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(alerts.live, "publish_board", sent.append)
    return sent


def ringing_call(seconds: int, **fields: Any) -> Call:
    call = CallFactory(state="incoming", subject="", **fields)
    Call.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
    call.refresh_from_db()
    return call


def open_alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind, cleared_at__isnull=True))


def test_a_call_ringing_past_the_threshold_raises_one_alert_and_answering_clears_it(
    published: list[dict[str, Any]], django_capture_on_commit_callbacks: Any
) -> None:
    AlertSettings.objects.create(ringing_seconds=20)
    late = ringing_call(25, source_display="Dana Smith")
    ringing_call(5)  # still inside the threshold

    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.evaluate_alerts() == {"ringing_long": 1}
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.evaluate_alerts() == {}  # raised once, not every sweep

    (alert,) = open_alerts(AlertKind.RINGING_LONG)
    assert (alert.call_id, alert.call_label) == (late.pk, "Dana Smith")
    assert "Ringing for 25 s" in alert.message
    assert "threshold 20 s" in alert.message
    (raised,) = published
    assert raised["type"] == "alerts.delta"
    assert [a["id"] for a in raised["raised"]] == [alert.pk]
    assert raised["raised"][0]["label"] == "Call ringing too long"

    Call.objects.filter(pk=late.pk).update(state="established")
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.evaluate_alerts() == {"rang_out": 1}
    alert.refresh_from_db()
    assert (alert.cleared_at is not None, alert.cleared_by) == (True, "resolved")
    assert published[-1] == {
        "type": "alerts.delta",
        "raised": [],
        "cleared": [alert.pk],
    }


def test_a_call_left_ringing_raises_the_alert_with_the_defaults_before_teams_ends_it() -> (
    None
):
    """Teams ends an unanswered call after its answer window (408/1106); with the
    default threshold, beat's sweep (every ALERT_SWEEP_SECONDS, at whatever phase
    to the call) raises the alert before that."""
    sweep = settings.ALERT_SWEEP_SECONDS
    for phase in range(sweep):
        Alert.objects.all().delete()
        call = ringing_call(0)
        deadline = answer_deadline(call)
        at = call.created_at + timedelta(seconds=phase)
        while at < deadline and not open_alerts(AlertKind.RINGING_LONG):
            alerts.evaluate_alerts(now=at)
            at += timedelta(seconds=sweep)
        (alert,) = open_alerts(AlertKind.RINGING_LONG)
        assert alert.call_id == call.pk, phase
        assert alert.raised_at < deadline
        call.delete()
    assert alerts.alert_settings().ringing_seconds < ANSWER_WINDOW_SECONDS


def test_a_ringing_threshold_teams_would_outlast_is_refused_with_a_reason() -> None:
    rules = AlertSettings(ringing_seconds=ANSWER_WINDOW_SECONDS)
    with pytest.raises(ValidationError) as refused:
        rules.full_clean()
    (message,) = refused.value.message_dict["ringing_seconds"]
    assert f"{ANSWER_WINDOW_SECONDS} s" in message
    AlertSettings(ringing_seconds=5).full_clean()


def test_ringing_alerts_can_be_switched_off() -> None:
    AlertSettings.objects.create(ringing_enabled=False, ringing_seconds=1)
    ringing_call(60)
    assert alerts.evaluate_alerts() == {}
    assert not Alert.objects.exists()


def test_raising_again_while_open_counts_instead_of_adding() -> None:
    call = CallFactory()
    first = alerts.raise_alert("action_failed", call, "Mute failed")
    second = alerts.raise_alert("action_failed", call.pk, "Invite failed")

    assert first is not None
    assert second is not None
    assert second.pk == first.pk
    assert (second.count, second.message) == (2, "Invite failed")
    assert Alert.objects.count() == 1


def test_the_database_keeps_one_open_alert_of_a_kind_about_no_call() -> None:
    """A call-less alert (worker down) raised by two web processes at once: the
    second insert is refused, so ``raise_alert``'s retry counts instead."""
    now = timezone.now()
    open_alert = {
        "kind": AlertKind.WORKER_DOWN,
        "raised_at": now,
        "last_raised_at": now,
    }
    Alert.objects.create(**open_alert)

    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(**open_alert)

    Alert.objects.create(**open_alert, cleared_at=now)  # a cleared one may repeat
    again = alerts.raise_alert(AlertKind.WORKER_DOWN, None, "No worker")
    assert again is not None
    assert again.count == 2
    assert Alert.objects.filter(cleared_at=None).count() == 1


def test_an_unknown_kind_is_refused_and_bot_dropped_is_known() -> None:
    with pytest.raises(ValueError, match="not_a_kind"):
        alerts.raise_alert("not_a_kind", None, "?")
    dropped = alerts.raise_alert("bot_dropped", CallFactory(), "Removed by Teams.")
    assert dropped is not None
    assert dropped.get_kind_display() == "Bot dropped from a call"


def test_a_failed_action_raises_an_alert_after_commit_in_words(
    django_capture_on_commit_callbacks: Any,
) -> None:
    call = CallFactory(subject="Ops bridge")
    action = ActionFactory(call=call, kind="invite", status=ActionStatus.SENT)

    with django_capture_on_commit_callbacks(execute=False) as hooks:
        lifecycle.record_outcome(
            action.pk, ActionStatus.FAILED, error_code="graph_403", message="Denied"
        )
        assert not Alert.objects.exists()  # nothing until the failure is committed
    for hook in hooks:
        hook()

    (alert,) = open_alerts(AlertKind.ACTION_FAILED)
    assert (alert.call_id, alert.call_label) == (call.pk, "Ops bridge")
    assert alert.message == (
        "Invite: Callbot's app registration lacks the permission for this: Denied"
    )


def test_event_alerts_expire_and_condition_alerts_end_with_their_call() -> None:
    AlertSettings.objects.create(expire_minutes=15)
    call = CallFactory()
    failed = alerts.raise_alert(
        "action_failed", call, "x", now=timezone.now() - timedelta(minutes=16)
    )
    fresh = alerts.raise_alert("bot_dropped", call, "y")
    keep = alerts.raise_alert("keep_alive_failed", call, "z")
    assert failed is not None
    assert fresh is not None
    assert keep is not None

    Call.objects.filter(pk=call.pk).update(
        state="terminated", terminated_at=timezone.now()
    )
    assert alerts.evaluate_alerts() == {"ended": 1, "expired": 1}

    assert [a.pk for a in Alert.objects.filter(cleared_at__isnull=True)] == [fresh.pk]
    assert Alert.objects.get(pk=failed.pk).cleared_by == "expired"
    assert Alert.objects.get(pk=keep.pk).cleared_by == "call ended"


def test_a_failed_keep_alive_raises_an_alert_that_the_next_success_clears(
    graph: FakeGraph,
) -> None:
    call = CallFactory(state="established")
    graph.on("keep_alive", GraphTransientError(503, "ServiceUnavailable"), None)

    with pytest.raises(GraphTransientError):
        upkeep.keep_alive(call.pk)
    (alert,) = open_alerts(AlertKind.KEEP_ALIVE_FAILED)
    assert alert.message.startswith("keepAlive failed:")

    assert upkeep.keep_alive(call.pk) == "kept"
    alert.refresh_from_db()
    assert alert.cleared_at is not None


def test_a_call_graph_knows_but_teams_left_silent_raises_an_alert_until_it_speaks(
    graph: FakeGraph,
) -> None:
    AlertSettings.objects.create(silent_minutes=10)
    call = CallFactory(state="established")
    long_ago = timezone.now() - timedelta(minutes=12)
    CallEvent.objects.create(
        call=call,
        sequence=1,
        resource_kind="call",
        change_type="updated",
        payload={},
        digest="a" * 64,
        received_at=long_ago,
    )

    assert upkeep.reconcile_call(call.pk) == "alive"
    (alert,) = open_alerts(AlertKind.SILENT_CALL)
    assert "No notification from Teams for 12 min" in alert.message
    # The check itself is no notification: the next reconciliation still sees it.
    assert upkeep.reconcile_call(call.pk) == "alive"
    assert Alert.objects.get(pk=alert.pk).count == 2

    CallEvent.objects.create(
        call=call,
        sequence=2,
        resource_kind="call",
        change_type="updated",
        payload={},
        digest="b" * 64,
        received_at=timezone.now(),
    )
    assert alerts.evaluate_alerts() == {"heard": 1}


def test_a_call_heard_from_recently_raises_no_silence_alert(graph: FakeGraph) -> None:
    call = CallFactory(state="established")
    assert upkeep.reconcile_call(call.pk) == "alive"
    assert not Alert.objects.exists()


def test_an_admin_sets_the_thresholds_in_the_admin_and_a_supervisor_cannot(
    client: Any,
) -> None:
    ada = upsert_user("ada", Role.ADMIN, password="ada-pw-12345")[0]
    bob = upsert_user("bob", Role.SUPERVISOR, password="bob-pw-12345")[0]
    client.force_login(bob)
    assert client.get("/admin/calls/alertsettings/").status_code in (302, 403)

    client.force_login(ada)
    form = {
        "ringing_enabled": "on",
        "ringing_seconds": "6",
        "silent_enabled": "on",
        "silent_minutes": "5",
        "action_failed_enabled": "on",
        "worker_seconds": "60",
        "expire_minutes": "30",
    }
    for wrong in ("0", "30"):
        bad = client.post(
            "/admin/calls/alertsettings/add/", {**form, "ringing_seconds": wrong}
        )
        assert bad.status_code == 200  # the form again, with the error
    assert "answer window" in bad.content.decode()
    assert not AlertSettings.objects.exists()
    saved = client.post("/admin/calls/alertsettings/add/", form)
    assert saved.status_code == 302
    rules = alerts.alert_settings()
    assert (rules.ringing_seconds, rules.silent_minutes, rules.expire_minutes) == (
        6,
        5,
        30,
    )
    assert not rules.bot_dropped_enabled
    assert alerts.raise_alert("bot_dropped", CallFactory(), "off") is None
    # One row: no second one to add, and none to delete.
    assert client.get("/admin/calls/alertsettings/add/").status_code == 403
    assert client.get("/admin/calls/alertsettings/1/delete/").status_code == 403
