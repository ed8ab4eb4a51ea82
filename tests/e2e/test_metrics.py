"""A scripted call moves the counters a monitoring system watches: the emulator
rings Callbot, the bot answers, and a scrape of ``/metrics`` over HTTP shows the
notifications, the ingest time, the Graph request, the action's outcome and the
call's state."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from callbot.calls.services import request_action
from tests.e2e.conftest import Callbot
from tests.e2e.test_call_control import final, incoming_call

pytestmark = [pytest.mark.e2e]

TOKEN = "metrics-test-token"


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
    return sum(
        v
        for (n, have), v in samples.items()
        if n == name and set(labels.items()) <= set(have)
    )


def test_a_scripted_call_moves_the_counters(callbot: Callbot, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    before = scrape(callbot.url)

    call = incoming_call(callbot)
    answer = final(request_action("answer", actor=None, call=call))
    assert answer.status == "completed"
    after = scrape(callbot.url)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("callbot_notifications_received_total") >= 2  # ringing, established
    assert moved("callbot_ingest_duration_seconds_count") >= 2
    assert moved("callbot_actions_total", kind="answer", outcome="completed") == 1
    assert (
        moved(
            "callbot_graph_request_duration_seconds_count",
            endpoint="/communications/calls/{id}/answer",
            method="POST",
        )
        == 1
    )
    assert moved("callbot_deltas_pushed_total", group="call") >= 2
    assert value(after, "callbot_calls", state="established") >= 1
    assert any(name == "callbot_celery_queue_depth" for name, _ in after)
