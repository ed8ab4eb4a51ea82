"""bench/reports.py's generator on a tiny data set: the calls it writes carry the
summary columns the history reads, as calls saved one by one do."""

from __future__ import annotations

import pytest

from bench.reports import generate
from callbot.calls.models import Call
from callbot.calls.states import call_summary

pytestmark = pytest.mark.django_db


def test_generated_calls_have_their_outcome_and_duration() -> None:
    generate(60, 3, live=False)

    calls = list(Call.objects.all())
    assert len(calls) == 60
    for call in calls:
        assert (call.outcome, call.duration_seconds) == call_summary(
            call.state,
            call.established_at,
            call.terminated_at,
            call.result_code,
            call.result_subcode,
            incoming=call.direction == "incoming",
        )
    assert {c.outcome for c in calls} >= {"answered", "abandoned"}
    assert "live" not in {c.outcome for c in calls}
