"""The Graph client's metrics: every attempt timed by endpoint and status through
httpx event hooks, 429s and retries counted."""

from __future__ import annotations

import httpx
import respx
from prometheus_client import REGISTRY

from callbot.graph.client import GraphClient
from callbot.graph.metrics import endpoint_of
from tests.graph.conftest import BASE_URL

CALL = "2f1e4d00-8e3b-4a1c-9f5e-1d2c3b4a5f60"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_endpoints_are_paths_with_ids_left_out() -> None:
    assert (
        endpoint_of(f"{BASE_URL}/communications/calls/{CALL}/keepAlive?x=1")
        == "/communications/calls/{id}/keepAlive"
    )
    assert (
        endpoint_of(
            "https://graph.microsoft.com/v1.0/communications/calls/abc123/"
            "participants/7/microsoft.graph.mute"
        )
        == "/communications/calls/{id}/participants/{id}/microsoft.graph.mute"
    )
    assert endpoint_of("https://graph.example/beta/communications/calls") == (
        "/communications/calls"
    )


def test_a_throttled_request_is_timed_counted_and_retried(
    graph: respx.Router, graph_client: GraphClient, sleeps: list[float]
) -> None:
    endpoint = "/communications/calls/{id}/keepAlive"
    seen = {
        status: sample(
            "callbot_graph_request_duration_seconds_count",
            endpoint=endpoint,
            method="POST",
            status=status,
        )
        for status in ("429", "200")
    }
    throttled = sample("callbot_graph_throttled_total", endpoint=endpoint)
    retries = sample("callbot_graph_retries_total", reason="429")
    graph.post(f"{BASE_URL}/communications/calls/{CALL}/keepAlive").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200),
        ]
    )

    graph_client.keep_alive(CALL)

    assert sleeps == [1.0]
    for status in ("429", "200"):
        count = sample(
            "callbot_graph_request_duration_seconds_count",
            endpoint=endpoint,
            method="POST",
            status=status,
        )
        assert count == seen[status] + 1, status
    assert sample("callbot_graph_throttled_total", endpoint=endpoint) == throttled + 1
    assert sample("callbot_graph_retries_total", reason="429") == retries + 1
