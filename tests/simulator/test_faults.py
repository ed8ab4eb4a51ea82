"""Every fault switch, and what the stats say it did."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.simulator.conftest import ring_and_answer
from tests.support.emulator import RecordingWebhook, RunningEmulator, wait_until


def stats(emulator: RunningEmulator) -> dict[str, dict[str, object]]:
    result: dict[str, dict[str, object]] = emulator.control("GET", "/stats")
    return result


def test_graph_429_carries_retry_after_and_is_counted(
    emulator: RunningEmulator, graph: httpx.Client
) -> None:
    emulator.control("POST", "/faults", {"graph_429": {"count": 1, "retry_after": 1.5}})

    throttled = graph.get("/communications/calls/nope")
    after = graph.get("/communications/calls/nope")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1.5"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert after.status_code == 404
    assert stats(emulator)["faults"]["applied"] == {"graph_429": 1}


@pytest.mark.parametrize(("fault", "status"), [("graph_500", 500), ("graph_503", 503)])
def test_graph_server_errors(
    emulator: RunningEmulator, graph: httpx.Client, fault: str, status: int
) -> None:
    emulator.control(
        "POST", "/faults", {fault: {"probability": 1.0, "match": "/keepAlive"}}
    )

    hit = graph.post("/communications/calls/x/keepAlive")
    missed = graph.get("/communications/calls/x")

    assert hit.status_code == status
    assert "error" in hit.json()
    assert missed.status_code == 404


def test_slow_answers_are_delayed(
    emulator: RunningEmulator, graph: httpx.Client
) -> None:
    emulator.control("POST", "/faults", {"graph_slow": {"count": 1, "delay_ms": 300}})

    started = time.monotonic()
    graph.get("/communications/calls/x")

    assert time.monotonic() - started >= 0.3


def test_bad_fault_definitions_are_refused(emulator: RunningEmulator) -> None:
    response = emulator.http().post("/_emulator/faults", json={"graph_418": {}})
    wrong_key = emulator.http().post(
        "/_emulator/faults", json={"graph_429": {"probability": 2}}
    )

    assert response.status_code == 400
    assert "graph_418" in response.text
    assert wrong_key.status_code == 400


def test_duplicated_notifications_keep_their_message_id(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    emulator.control("POST", "/faults", {"notify_duplicate": {"count": 1}})

    emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})

    deliveries = wait_until(
        lambda: len(webhook.valid_deliveries()) == 2 and webhook.valid_deliveries()
    )
    assert deliveries[0].message_id == deliveries[1].message_id
    assert deliveries[0].notifications == deliveries[1].notifications
    assert stats(emulator)["notifications"]["duplicatedPosts"] == 1


def test_reordered_notifications_swap_establishing_and_established(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    emulator.control("POST", "/faults", {"notify_reorder": {"count": 1}})

    call_id = ring_and_answer(emulator, webhook, graph)

    assert webhook.call_states(call_id)[:3] == [
        "created:incoming",
        "updated:established",
        "updated:establishing",
    ]
    assert stats(emulator)["faults"]["applied"] == {"notify_reorder": 1}


def test_delayed_redelivery_repeats_a_post_later(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    emulator.control(
        "POST", "/faults", {"notify_redeliver": {"count": 1, "delay": 0.3}}
    )

    emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})
    first = wait_until(lambda: webhook.valid_deliveries())[0]

    again = wait_until(
        lambda: len(webhook.valid_deliveries()) == 2 and webhook.valid_deliveries()[1]
    )
    assert again.message_id == first.message_id
    assert stats(emulator)["notifications"]["redeliveredPosts"] == 1


def test_dropped_notifications_never_arrive(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    emulator.control("POST", "/faults", {"notify_drop": {"count": 1}})

    call_id = emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})[
        "callId"
    ]
    graph.post(f"/communications/calls/{call_id}/reject", json={})
    emulator.wait_idle()

    assert webhook.call_states(call_id) == ["deleted:"]
    assert stats(emulator)["notifications"]["dropped"] == 1


@pytest.mark.parametrize("mode", ["same_kid", "unknown_kid"])
def test_wrong_signing_key_is_rejected_by_the_webhook(
    emulator: RunningEmulator, webhook: RecordingWebhook, mode: str
) -> None:
    emulator.control(
        "POST", "/faults", {"notify_wrong_key": {"count": 1, "mode": mode}}
    )

    emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})
    emulator.wait_idle()

    assert len(webhook.deliveries) == 1
    assert not webhook.deliveries[0].valid
    figures = stats(emulator)["notifications"]
    assert figures["statusCounts"] == {"401": 1}
    assert figures["failed"] == 1


def test_a_failing_webhook_gets_retries_with_the_same_message_id(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    webhook.respond_with = [503, 500]

    emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})

    deliveries = wait_until(lambda: len(webhook.deliveries) == 3 and webhook.deliveries)
    # The webhook records a POST before the emulator has read its answer.
    emulator.wait_idle()
    assert len({d.message_id for d in deliveries}) == 1
    figures = stats(emulator)["notifications"]
    assert figures["retries"] == 2
    assert figures["delivered"] == 1


def test_run_wide_faults_come_from_the_config(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from callbot.simulator.config import EmulatorConfig
    from tests.support.emulator import start_emulator

    config = EmulatorConfig(
        faults={"graph_503": {"probability": 1.0, "retry_after": 2}}
    )
    running = start_emulator(tmp_path_factory.mktemp("faulty"), config)
    try:
        with running.graph() as graph:
            response = graph.get("/communications/calls/x")
    finally:
        running.stop()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
