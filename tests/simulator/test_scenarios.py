"""Scenarios: pure and seeded (checked on a fake stage), and each one's first stretch
fast-forwarded on the running emulator against a bot played by the test."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from io import StringIO
from typing import Any

from django.core.management import call_command

import httpx

from callbot.simulator.scenarios import SCENARIOS, Condition, Person
from tests.simulator.conftest import SERVICE_MEDIA, rosters
from tests.support.emulator import RecordingWebhook, RunningEmulator, iter_tones


class FakeStage:
    """Records what a scenario does; every call is established and listens at once."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.actions: list[str] = []
        self.clock = 0.0
        self.tasks: list[Coroutine[Any, Any, None]] = []
        self._ids = 0

    def _id(self) -> str:
        self._ids += 1
        return f"id{self._ids}"

    def log(self, message: str) -> None:
        self.actions.append(f"log {message}")

    def elapsed(self) -> float:
        return self.clock

    async def sleep(self, seconds: float) -> None:
        self.clock += seconds

    def spawn(self, activity: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(activity)

    def call_bot(self, caller: Person) -> str:
        self.actions.append(f"call {caller.name}")
        return self._id()

    async def wait_for(self, call_id: str, condition: Condition, within: float) -> bool:
        return condition != "ended"

    def press(self, call_id: str, tones: list[str]) -> int:
        self.actions.append(f"press {call_id} {tones}")
        return len(tones)

    def hang_up(self, call_id: str) -> None:
        self.actions.append(f"hang up {call_id}")

    def escalate(self, call_id: str, newcomer: Person) -> None:
        self.actions.append(f"escalate {call_id} {newcomer.name}")

    def create_meeting(self, subject: str, organizer: Person) -> str:
        return self._id()

    def invite_bot(self, meeting_id: str) -> str:
        return self._id()

    def join(self, meeting_id: str, person: Person, muted: bool = False) -> str | None:
        self.actions.append(f"join {person.name} {muted}")
        return self._id()

    def leave(self, meeting_id: str, participant_id: str) -> None:
        self.actions.append(f"leave {participant_id}")

    def set_muted(self, meeting_id: str, participant_id: str, muted: bool) -> None:
        self.actions.append(f"mute {participant_id} {muted}")

    def set_sharing(self, meeting_id: str, participant_id: str, sharing: bool) -> None:
        self.actions.append(f"share {participant_id} {sharing}")


def play(name: str, seed: int) -> list[str]:
    stage = FakeStage(seed)

    async def run() -> None:
        await SCENARIOS[name](stage, 300.0)
        while stage.tasks:
            await stage.tasks.pop(0)

    asyncio.run(run())
    return stage.actions


def test_scenarios_are_pure_and_repeat_with_the_same_seed() -> None:
    for name in SCENARIOS:
        assert play(name, 7) == play(name, 7), name
    assert play("mixed", 7) != play("mixed", 8)
    assert "press id1 ['tone0']" in play("ivr-operator", 1)
    assert sum(a.startswith("join") for a in play("standup", 1)) == 8
    assert sum(a.startswith("call") for a in play("burst", 1)) == 100


def start(
    emulator: RunningEmulator, name: str, speed: float, duration: float = 600
) -> int:
    run: dict[str, Any] = emulator.control(
        "POST",
        "/scenarios",
        {"name": name, "seed": 3, "duration": duration, "speed": speed},
    )
    return int(run["id"])


def created(webhook: RecordingWebhook) -> list[dict[str, Any]]:
    return [
        i["resourceData"]
        for i in webhook.notifications()
        if i["changeType"] == "created"
    ]


def answer(
    graph: httpx.Client, webhook: RecordingWebhook, call_id: str, delta: bool = False
) -> None:
    body: dict[str, Any] = {
        "callbackUri": webhook.url,
        "acceptedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
    }
    if delta:
        body["callOptions"] = {
            "@odata.type": "#microsoft.graph.incomingCallOptions",
            "isDeltaRosterEnabled": True,
        }
    assert (
        graph.post(f"/communications/calls/{call_id}/answer", json=body).status_code
        == 202
    )


def test_ivr_operator_presses_zero_once_the_bot_listens(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    run = start(emulator, "ivr-operator", speed=10)
    call_id = webhook.wait_for(lambda n: created(webhook))[0]["id"]

    answer(graph, webhook, call_id)
    webhook.wait_for(
        lambda n: "updated:established" in webhook.call_states(call_id), call_id
    )
    graph.post(f"/communications/calls/{call_id}/subscribeToTone", json={})

    tones = webhook.wait_for(lambda n: list(iter_tones(n)), call_id)
    assert tones[0]["tone"] == "tone0"
    emulator.control("DELETE", f"/scenarios/{run}")


def test_standup_brings_eight_people_within_a_minute(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    start(emulator, "standup", speed=30, duration=90)
    invite = webhook.wait_for(lambda n: created(webhook))[0]
    assert invite["chatInfo"]["threadId"].startswith("19:meeting_")

    answer(graph, webhook, invite["id"])

    webhook.wait_for(
        lambda n: any(len(r) == 9 for r in rosters(webhook, invite["id"])),
        invite["id"],
        timeout=6,
    )
    events = emulator.control("GET", "/events")["value"]
    assert any("standup" in e["message"] for e in events)


def test_townhall_fills_up_with_delta_rosters(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    start(emulator, "townhall", speed=60, duration=180)
    invite = webhook.wait_for(lambda n: created(webhook))[0]
    answer(graph, webhook, invite["id"], delta=True)

    def joined() -> int:
        ids = {
            p["id"] for d in rosters(webhook, invite["id"]) for p in d["participants"]
        }
        return len(ids)

    webhook.wait_for(lambda n: joined() >= 1001, timeout=15)
    sequence = [d["sequenceNumber"] for d in rosters(webhook, invite["id"])]
    assert sequence == sorted(sequence)
    assert len(set(sequence)) == len(sequence)


def test_burst_rings_the_bot_a_hundred_times_and_microsoft_ends_unanswered_calls(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    start(emulator, "burst", speed=20, duration=30)

    webhook.wait_for(lambda n: len(created(webhook)) == 100, timeout=10)
    webhook.wait_for(
        lambda n: sum(1 for i in n if i["changeType"] == "deleted") == 100, timeout=10
    )
    assert emulator.control("GET", "/stats")["notifications"]["failed"] == 0


def test_mixed_produces_a_steady_background(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    run = start(emulator, "mixed", speed=40, duration=120)

    webhook.wait_for(lambda n: len(created(webhook)) >= 5, timeout=10)
    emulator.control("DELETE", f"/scenarios/{run}")
    assert emulator.control("GET", "/scenarios")["value"][0]["status"] == "stopped"


def test_simulate_command_starts_a_scenario_and_narrates_it(
    emulator: RunningEmulator, webhook: RecordingWebhook
) -> None:
    out = StringIO()

    call_command(
        "simulate",
        "burst",
        duration=2,
        speed=20,
        poll=0.1,
        emulator_url=emulator.url,
        ca=str(emulator.ca_path),
        stdout=out,
    )

    text = out.getvalue()
    assert "scenario burst #" in text
    assert "100 incoming calls at once" in text
    assert "notifications:" in text
