"""Actions over the live socket are rate limited per socket and per user: a
supervisor clicking fast never meets the limit, a script does, and every
over-limit action is refused with ``rate_limited`` and audited."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from callbot.calls.models import Action, AuditEntry, Call
from dashboard import ratelimit
from dashboard.ratelimit import TokenBucket
from tests.dashboard.sockets import open_socket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def default_bucket(clock: Clock) -> TokenBucket:
    rate, burst = ratelimit.action_rate()
    return TokenBucket(rate=rate, burst=burst, clock=clock)


def test_a_bucket_gives_its_burst_then_one_token_per_interval() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)

    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # empty: the next in half a second
    clock.now += 0.5
    assert bucket.take() == 0.0
    clock.now += 60
    assert [bucket.take() for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never over 3


def test_a_supervisor_clicking_fast_never_meets_the_default_limit(
    settings: Any,
) -> None:
    clock = Clock()
    bucket = default_bucket(clock)
    # Four clicks a second for twelve seconds (a supervisor muting a row of people
    # as fast as a hand goes), then one every half second for five minutes.
    refused = 0
    for _ in range(4 * 12):
        refused += bucket.take() > 0
        clock.now += 0.25
    for _ in range(2 * 300):
        refused += bucket.take() > 0
        clock.now += 0.5
    assert refused == 0


def test_a_script_is_held_to_the_rate(settings: Any) -> None:
    clock = Clock()
    bucket = default_bucket(clock)
    # The finding: 1,000 actions in 57 s, all accepted.
    accepted = 0
    for _ in range(1000):
        accepted += bucket.take() == 0
        clock.now += 0.057
    expected = settings.LIVE_ACTION_BURST + 57 * settings.LIVE_ACTION_RATE / 60
    assert accepted == pytest.approx(expected, abs=2)
    assert accepted < 200


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate=0, burst=5)


# --- over the socket ----------------------------------------------------------------


def mute_bot(call: Call, request_id: str) -> dict[str, Any]:
    return {
        "type": "action",
        "request_id": request_id,
        "call": call.pk,
        "kind": "mute_bot",
    }


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live", "enqueued")
async def test_over_the_limit_an_action_is_refused_and_audited(
    bob: Any, meeting_call: Call, settings: Any
) -> None:
    settings.LIVE_ACTION_BURST = 3
    settings.LIVE_ACTION_RATE = 1  # a minute: nothing comes back during the test
    socket = await open_socket(bob)
    answers = []
    for n in range(5):
        await socket.send_json_to(mute_bot(meeting_call, f"r{n}"))
        answers.append(await socket.receive_json_from())
    await socket.disconnect()

    assert [a["type"] for a in answers] == ["action.accepted"] * 3 + [
        "action.refused"
    ] * 2
    refused = answers[3]
    assert (refused["code"], refused["request_id"], refused["kind"]) == (
        "rate_limited",
        "r3",
        "mute_bot",
    )
    assert refused["message"].startswith("Too many actions in a short time; wait ")
    assert await Action.objects.acount() == 3
    entries = [
        (e.actor_name, e.action, e.call_id, e.detail["code"])
        async for e in AuditEntry.objects.filter(outcome="refused").order_by("pk")
    ]
    assert entries == [("bob", "mute_bot", meeting_call.pk, "rate_limited")] * 2


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live", "enqueued")
async def test_the_limit_is_the_users_across_sockets(
    bob: Any, meeting_call: Call, settings: Any
) -> None:
    settings.LIVE_ACTION_BURST = 2
    settings.LIVE_ACTION_RATE = 1
    first, second = await open_socket(bob), await open_socket(bob)
    for n in range(2):
        await first.send_json_to(mute_bot(meeting_call, f"a{n}"))
        assert (await first.receive_json_from())["type"] == "action.accepted"

    await second.send_json_to(mute_bot(meeting_call, "b0"))
    answer = await second.receive_json_from()
    assert (answer["type"], answer["code"]) == ("action.refused", "rate_limited")
    await first.disconnect()
    await second.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live", "enqueued")
async def test_mute_everyone_counts_as_one_request(
    bob: Any, meeting_call: Call, settings: Any
) -> None:
    settings.LIVE_ACTION_BURST = 2
    settings.LIVE_ACTION_RATE = 1
    socket = await open_socket(bob)
    await socket.send_json_to(
        {
            "type": "action",
            "request_id": "all",
            "call": meeting_call.pk,
            "kind": "mute_all",
        }
    )
    everyone = await socket.receive_json_from()
    await socket.send_json_to(mute_bot(meeting_call, "bot"))
    bot = await socket.receive_json_from()
    await socket.send_json_to(mute_bot(meeting_call, "more"))
    more = await socket.receive_json_from()
    await socket.disconnect()

    assert everyone["type"] == "action.accepted"
    assert len(everyone["actions"]) == 2  # Ana and Lee: two mutes, one request
    assert bot["type"] == "action.accepted"
    assert (more["type"], more["code"]) == ("action.refused", "rate_limited")


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("live", "enqueued")
async def test_a_flood_of_actions_is_refused_then_the_socket_is_closed(
    bob: Any, meeting_call: Call, settings: Any
) -> None:
    settings.LIVE_ACTION_BURST = 5
    settings.LIVE_ACTION_RATE = 1
    socket = await open_socket(bob)
    for n in range(200):
        await socket.send_json_to(mute_bot(meeting_call, f"r{n}"))
    seen: list[str] = []
    while True:
        output = await socket.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            break
        message = json.loads(output["text"])
        seen.append(message.get("code") or message["type"])
    await socket.disconnect()

    assert output["code"] == 4429
    assert seen[:5] == ["action.accepted"] * 5
    assert seen[-1] == "flooded"
    refused = seen[5:-1]
    assert set(refused) == {"rate_limited"}
    # Audited, and bounded: the socket closed long before 200 refusals.
    assert 30 <= len(refused) <= 35
    assert await AuditEntry.objects.filter(outcome="refused").acount() == len(refused)


# --- across servers ---------------------------------------------------------------


@pytest.fixture
def redis_limits(settings: Any) -> Iterator[None]:
    settings.REDIS_URL = os.environ["REDIS_URL"]
    settings.LIVE_ACTION_BURST = 3
    settings.LIVE_ACTION_RATE = 1
    ratelimit._script.cache_clear()
    ratelimit.forget_users()
    yield
    settings.REDIS_URL = os.environ["REDIS_URL"]
    ratelimit._script.cache_clear()
    ratelimit.forget_users()
    ratelimit._script.cache_clear()


@pytest.mark.needs_redis
@pytest.mark.usefixtures("redis_limits")
def test_with_redis_every_server_shares_a_users_bucket() -> None:
    waits = [ratelimit.take_user_action(41) for _ in range(3)]
    # Another server: a client of its own, the same bucket.
    ratelimit._script.cache_clear()
    after = ratelimit.take_user_action(41)
    other_user = ratelimit.take_user_action(42)

    assert waits == [0.0, 0.0, 0.0]
    assert after == pytest.approx(60.0, abs=1)  # one a minute
    assert other_user == 0.0
    assert ratelimit._local == {}  # nothing kept in this process


@pytest.mark.needs_redis
@pytest.mark.usefixtures("redis_limits")
def test_with_redis_down_the_user_limit_gives_way(settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    ratelimit._script.cache_clear()
    assert [ratelimit.take_user_action(41) for _ in range(5)] == [0.0] * 5
