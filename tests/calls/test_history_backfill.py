"""The data migrations that fill the history's columns on rows stored before them."""

from __future__ import annotations

import importlib
from datetime import timedelta

from django.apps import apps
from django.utils import timezone

import pytest

from callbot.calls.models import Call
from callbot.calls.states import CallState
from callbot.ivr.models import IvrSession
from tests.factories import CallFactory

pytestmark = pytest.mark.django_db


def test_calls_get_outcome_duration_and_caller_id() -> None:
    now = timezone.now()
    call = CallFactory(
        state=CallState.TERMINATED,
        established_at=now - timedelta(seconds=75),
        terminated_at=now,
        result_code=200,
        result_subcode=7015,
        source={"identity": {"phone": {"id": "+14255550100"}}},
    )
    # As stored before the columns existed.
    Call.objects.filter(pk=call.pk).update(outcome="live", duration_seconds=0)
    migration = importlib.import_module(
        "callbot.calls.migrations.0010_backfill_call_history"
    )
    migration.backfill(apps, None)
    call.refresh_from_db()
    assert (call.outcome, call.duration_seconds) == ("transferred", 75)
    assert call.source_id == "+14255550100"


def test_ivr_sessions_get_their_path_from_their_history() -> None:
    session = IvrSession.objects.create(
        call=CallFactory(),
        flow_start="menu",
        history=[
            {"at": "", "step": "menu", "after": ""},
            {"at": "", "step": "support", "after": "pressed 2"},
            {"at": "", "step": "goodbye", "after": "pressed 9 (no such option)"},
        ],
    )
    migration = importlib.import_module(
        "callbot.ivr.migrations.0005_backfill_ivr_session_path"
    )
    migration.backfill(apps, None)
    session.refresh_from_db()
    assert session.path == " menu menu:2 support goodbye "
