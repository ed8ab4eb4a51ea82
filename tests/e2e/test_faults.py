"""Every emulator fault switch against Callbot: it ends in the right state, with
nothing lost that was delivered and nothing applied twice.

Graph-side faults are met by Callbot's ``GraphClient`` (retries with Retry-After or
backoff, one ``client-request-id`` across attempts, the action applied once);
delivery faults by the webhook and ingest (deduplication by delivery identity,
state moves only forward, refused tokens store nothing); Microsoft-side outcomes by
the state they leave.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from callbot.calls.models import Call, CallEvent
from callbot.calls.tasks import reconcile_silent_calls
from callbot.graph.client import GraphClient
from callbot.graph.factory import get_graph_client, reset_graph_client
from tests.e2e.conftest import Callbot
from tests.e2e.playing import (
    ANA,
    LEE,
    answer,
    events_are_whole,
    ring,
    ring_and_answer,
    stored_call,
)
from tests.support.emulator import RunningEmulator, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(quiet_bot: Callbot) -> Iterator[GraphClient]:
    yield get_graph_client()
    reset_graph_client()


def switch_on(emulator: RunningEmulator, **faults: dict[str, Any]) -> None:
    emulator.control("POST", "/faults", faults)


def stats(emulator: RunningEmulator) -> dict[str, Any]:
    emulator.wait_idle()
    figures: dict[str, Any] = emulator.control("GET", "/stats")
    return figures


def graph_requests(emulator: RunningEmulator, path_end: str) -> list[dict[str, Any]]:
    """The Graph requests the emulator answered whose path ends with ``path_end``."""
    return [
        r
        for r in emulator.control("GET", "/requests")["value"]
        if r["path"].endswith(path_end)
    ]


def call_states(call: Call) -> list[str]:
    return [
        str((e.payload.get("resourceData") or {}).get("state") or e.change_type)
        for e in CallEvent.objects.filter(call=call, resource_kind="call").order_by(
            "sequence"
        )
    ]


ANSWERED = ["incoming", "establishing", "established", "established"]


@pytest.mark.parametrize(
    ("fault", "spec", "status"),
    [
        ("graph_429", {"retry_after": 0.2}, 429),
        ("graph_500", {}, 500),
        ("graph_503", {"retry_after": 0.1}, 503),
    ],
)
def test_a_throttled_or_failing_answer_is_retried_and_applied_once(
    quiet_bot: Callbot,
    client: GraphClient,
    fault: str,
    spec: dict[str, Any],
    status: int,
) -> None:
    emulator = quiet_bot.emulator
    call = ring(quiet_bot)
    switch_on(emulator, **{fault: {"count": 1, "match": "/answer", **spec}})

    established = answer(quiet_bot, client, call)

    attempts = graph_requests(emulator, f"/{call.graph_id}/answer")
    assert [a["status"] for a in attempts] == [status, 202]
    assert attempts[0]["clientRequestId"] == attempts[1]["clientRequestId"]
    assert stats(emulator)["faults"]["applied"] == {fault: 1}
    # Applied once: one establishing/established run, no 409 from a second answer.
    assert call_states(established) == ANSWERED
    events_are_whole(established)


def test_an_answer_slower_than_the_timeout_is_retried_until_one_arrives_in_time(
    quiet_bot: Callbot, settings: Any
) -> None:
    emulator = quiet_bot.emulator
    call = ring_and_answer(quiet_bot, get_graph_client())
    settings.GRAPH_TIMEOUT_SECONDS = 0.5
    reset_graph_client()  # the client reads its timeout when built
    impatient = get_graph_client()
    impatient.get_call(call.graph_id)  # token first, so only the GET is slow
    switch_on(emulator, graph_slow={"count": 1, "delay_ms": 900, "match": "/calls/"})

    try:
        read = impatient.get_call(call.graph_id)
    finally:
        reset_graph_client()

    assert read.state == "established"
    gets = wait_until(
        lambda: (
            (found := graph_requests(emulator, f"/calls/{call.graph_id}"))
            and len(found) == 3
            and found
        )
    )
    # The slow answer still went out (late, to nobody); the retry used the same id.
    assert gets[1]["clientRequestId"] == gets[2]["clientRequestId"]
    assert stats(emulator)["faults"]["applied"] == {"graph_slow": 1}


def test_duplicated_deliveries_store_each_notification_once(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    switch_on(emulator, notify_duplicate={"probability": 1.0})

    call = ring_and_answer(quiet_bot, client)
    client.delete_call(call.graph_id)

    ended = stored_call(call.graph_id, state="terminated")
    figures = stats(emulator)["notifications"]
    assert figures["duplicatedPosts"] == figures["posts"] // 2 >= 3
    assert CallEvent.objects.filter(call=ended).count() == figures["delivered"]
    assert call_states(ended) == [*ANSWERED, "terminating", "terminated"]
    assert (ended.result_code, ended.result_subcode) == (200, 5001)
    events_are_whole(ended)


def test_a_late_establishing_cannot_roll_an_established_call_back(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    switch_on(emulator, notify_reorder={"count": 1})

    call = ring_and_answer(quiet_bot, client)

    assert stats(emulator)["faults"]["applied"] == {"notify_reorder": 1}
    assert call_states(call) == [
        "incoming",
        "established",
        "establishing",
        "established",
    ]
    late = next(
        e
        for e in CallEvent.objects.filter(call=call, resource_kind="call")
        if e.payload["resourceData"].get("state") == "establishing"
    )
    assert not late.applied
    call.refresh_from_db()
    assert call.state == "established"
    assert call.established_at is not None
    events_are_whole(call)


def test_a_redelivered_post_changes_nothing(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    emulator = quiet_bot.emulator
    switch_on(emulator, notify_redeliver={"count": 1, "delay": 0.2})

    call = ring(quiet_bot)
    wait_until(lambda: stats(emulator)["notifications"]["redeliveredPosts"] == 1)
    before = Call.objects.get(pk=call.pk)
    established = answer(quiet_bot, client, call)

    assert before.version == 1
    assert before.event_count == 1
    assert call_states(established) == ANSWERED
    assert (
        CallEvent.objects.filter(call=established).count()
        == stats(emulator)["notifications"]["delivered"]
    )
    events_are_whole(established)


def test_a_dropped_hang_up_leaves_the_call_live_until_reconciliation_closes_it(
    quiet_bot: Callbot, client: GraphClient, settings: Any
) -> None:
    emulator = quiet_bot.emulator
    call = ring_and_answer(quiet_bot, client)
    switch_on(emulator, notify_drop={"count": 1})

    emulator.control("POST", f"/calls/{call.graph_id}/hangup")

    assert stats(emulator)["notifications"]["dropped"] == 1
    # The only notification of the hang-up never came: the database says what the
    # remaining ones said, established.
    assert Call.objects.get(pk=call.pk).state == "established"
    # Reconciliation repairs it: a live call silent for RECONCILE_SILENCE_SECONDS
    # is read from Graph, which no longer knows it (404), and is closed here.
    settings.RECONCILE_SILENCE_SECONDS = 0
    assert reconcile_silent_calls() == {"gone": 1}
    closed = Call.objects.get(pk=call.pk)
    assert closed.state == "terminated"
    assert closed.terminated_at is not None


@pytest.mark.parametrize("mode", ["same_kid", "unknown_kid"])
def test_a_badly_signed_post_is_refused_and_the_next_good_one_lands(
    quiet_bot: Callbot, client: GraphClient, mode: str
) -> None:
    emulator = quiet_bot.emulator
    switch_on(emulator, notify_wrong_key={"count": 1, "mode": mode})
    graph_id = emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})[
        "callId"
    ]
    emulator.wait_idle()
    assert stats(emulator)["notifications"]["statusCounts"] == {"401": 1}
    assert not Call.objects.exists()

    client.answer(graph_id, callback_uri=quiet_bot.webhook)

    call = stored_call(graph_id, state="established", media_state_audio="active")
    figures = stats(emulator)["notifications"]
    assert figures["failed"] == 1
    assert CallEvent.objects.filter(call=call).count() == figures["delivered"]
    # What the refused POST carried (the incoming call) is missing; the rest is whole.
    assert call_states(call) == ANSWERED[1:]
    events_are_whole(call)


def test_a_failed_transfer_returns_the_call_to_established_with_its_result(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    call = ring_and_answer(quiet_bot, client)
    switch_on(quiet_bot.emulator, transfer_failure={"count": 1})

    client.transfer(call.graph_id, LEE)

    back = stored_call(call.graph_id, state="established", result_code=500)
    assert back.result_subcode == 7000
    assert call_states(back)[-3:] == [
        "transferring",
        "transferAccepted",
        "established",
    ]
    events_are_whole(back)


def test_an_unreachable_callee_ends_the_placed_call(
    quiet_bot: Callbot, client: GraphClient
) -> None:
    switch_on(quiet_bot.emulator, callee_unreachable={"count": 1})

    placed = client.place_peer_to_peer_call(ANA, callback_uri=quiet_bot.webhook)

    assert placed.id
    ended = stored_call(placed.id, state="terminated")
    assert (ended.result_code, ended.result_subcode) == (480, 10076)
    assert ended.established_at is None
    events_are_whole(ended)
