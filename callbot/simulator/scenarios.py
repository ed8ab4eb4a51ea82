"""Named scenarios: the humans (and Microsoft's timers) around a calling bot.

Pure scripts: each is an ``async`` function of a ``Stage``, which is the only way it
touches the world, and draws every choice from ``stage.rng`` (a ``random.Random`` seeded
per run), so a run with the same seed against the same bot repeats. The bot's own
behaviour (answering, IVR menus...) is not played here: an incoming call nobody answers
ends after 15 s as Microsoft ends it. Time is virtual (``stage.sleep``), so a run at
``speed`` 10 takes a tenth of the time.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Condition = Literal["established", "tones", "ended"]

FIRST_NAMES = (
    "Ana",
    "Lee",
    "Priya",
    "Tomás",
    "Mei",
    "Omar",
    "Sofia",
    "Jonas",
    "Aisha",
    "Kenji",
    "Lucía",
    "Noah",
    "Fatima",
    "Mateo",
    "Ingrid",
    "Ravi",
    "Chloé",
    "Dmitri",
    "Zara",
    "Kofi",
)
LAST_NAMES = (
    "Lopez",
    "Chen",
    "Patel",
    "García",
    "Wong",
    "Haddad",
    "Rossi",
    "Berg",
    "Okafor",
    "Sato",
    "Martín",
    "Smith",
    "Khan",
    "Silva",
    "Larsen",
    "Iyer",
    "Dubois",
    "Petrov",
    "Ali",
    "Mensah",
)
DIGITS = (
    "tone1",
    "tone2",
    "tone3",
    "tone4",
    "tone5",
    "tone6",
    "tone7",
    "tone8",
    "tone9",
    "tone0",
    "star",
    "pound",
)


@dataclass(frozen=True)
class Person:
    """A human: a Teams user (``kind`` user) or a phone number (``kind`` phone)."""

    kind: Literal["user", "phone"]
    id: str
    name: str

    def identity(self) -> dict[str, Any]:
        """The control-API identity of this person."""
        if self.kind == "phone":
            return {"phone": {"id": self.id}}
        return {"user": {"id": self.id, "displayName": self.name}}


def make_person(rng: random.Random, phone: bool = False) -> Person:
    """A random person, reproducible from ``rng``."""
    if phone:
        number = f"+1425555{rng.randrange(10**4):04d}"
        return Person("phone", number, number)
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    return Person("user", str(uuid.UUID(int=rng.getrandbits(128), version=4)), name)


class Stage(Protocol):
    """What a scenario may do. ``driver.py`` implements it on the emulator."""

    rng: random.Random

    def log(self, message: str) -> None: ...
    def elapsed(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...
    def spawn(self, activity: Coroutine[Any, Any, None]) -> None: ...
    def call_bot(self, caller: Person) -> str: ...
    async def wait_for(
        self, call_id: str, condition: Condition, within: float
    ) -> bool: ...
    def press(self, call_id: str, tones: list[str]) -> int: ...
    def hang_up(self, call_id: str) -> None: ...
    def escalate(self, call_id: str, newcomer: Person) -> None: ...
    def create_meeting(self, subject: str, organizer: Person) -> str: ...
    def invite_bot(self, meeting_id: str) -> str: ...
    def join(
        self, meeting_id: str, person: Person, muted: bool = False
    ) -> str | None: ...
    def leave(self, meeting_id: str, participant_id: str) -> None: ...
    def set_muted(self, meeting_id: str, participant_id: str, muted: bool) -> None: ...
    def set_sharing(
        self, meeting_id: str, participant_id: str, sharing: bool
    ) -> None: ...


# --- building blocks -------------------------------------------------------------------
async def caller(
    stage: Stage,
    person: Person,
    talk: float,
    keys: int = 0,
    escalate_to: Person | None = None,
) -> None:
    """One person calls the bot, presses ``keys`` random keys if it listens, talks for
    ``talk`` seconds and hangs up (unless the bot hangs up first)."""
    call_id = stage.call_bot(person)
    if not await stage.wait_for(call_id, "established", 20):
        stage.log(f"{person.name}: nobody answered call {call_id[:8]}")
        return
    if keys and await stage.wait_for(call_id, "tones", 5):
        for _ in range(keys):
            await stage.sleep(stage.rng.uniform(0.5, 2.0))
            stage.press(call_id, [stage.rng.choice(DIGITS)])
    if escalate_to is not None:
        await stage.sleep(stage.rng.uniform(2, 6))
        stage.log(f"{person.name} adds {escalate_to.name} to call {call_id[:8]}")
        stage.escalate(call_id, escalate_to)
    if await stage.wait_for(call_id, "ended", talk):
        return
    stage.log(f"{person.name} hangs up call {call_id[:8]}")
    stage.hang_up(call_id)


async def attendee(
    stage: Stage, meeting_id: str, person: Person, delay: float, stay: float
) -> None:
    """Join ``meeting_id`` after ``delay``, maybe mute or share for a while, leave."""
    await stage.sleep(delay)
    participant_id = stage.join(meeting_id, person, muted=stage.rng.random() < 0.2)
    if participant_id is None:
        return
    left = stay
    while left > 0:
        pause = min(left, stage.rng.uniform(5, 30))
        await stage.sleep(pause)
        left -= pause
        roll = stage.rng.random()
        if roll < 0.3:
            stage.set_muted(meeting_id, participant_id, stage.rng.random() < 0.6)
        elif roll < 0.35:
            stage.set_sharing(meeting_id, participant_id, stage.rng.random() < 0.5)
    stage.leave(meeting_id, participant_id)


# --- the named scenarios --------------------------------------------------------------------
async def ivr_operator(stage: Stage, duration: float) -> None:
    """A user calls the bot; once it answers and listens for tones, presses 0."""
    person = make_person(stage.rng)
    stage.log(f"{person.name} calls the bot to reach the operator")
    call_id = stage.call_bot(person)
    if not await stage.wait_for(call_id, "established", 20):
        stage.log("the bot did not answer; Microsoft ends the call after 15 s")
        return
    if not await stage.wait_for(call_id, "tones", 30):
        stage.log(f"{person.name} hears no menu and hangs up")
        stage.hang_up(call_id)
        return
    await stage.sleep(stage.rng.uniform(1.0, 3.0))
    stage.log(f"{person.name} presses 0")
    stage.press(call_id, ["tone0"])
    if not await stage.wait_for(call_id, "ended", max(duration - stage.elapsed(), 1.0)):
        stage.log(f"{person.name} gives up and hangs up")
        stage.hang_up(call_id)


async def standup(stage: Stage, duration: float) -> None:
    """A scheduled meeting: the bot is invited, 8 people join over a minute, some mute."""
    organizer = make_person(stage.rng)
    meeting_id = stage.create_meeting("Daily standup", organizer)
    stage.log(f"{organizer.name} starts the daily standup and invites the bot")
    stage.invite_bot(meeting_id)
    talk = max(duration - 60.0, 30.0)
    for _ in range(8):
        delay = stage.rng.uniform(0, 60)
        # Everyone stays until the standup has run its course after the last arrival.
        stay = 60.0 - delay + talk + stage.rng.uniform(0, 20)
        stage.spawn(attendee(stage, meeting_id, make_person(stage.rng), delay, stay))
    await stage.sleep(duration)


async def townhall(stage: Stage, duration: float) -> None:
    """1,000 people join over two minutes, then steady churn."""
    organizer = make_person(stage.rng)
    meeting_id = stage.create_meeting("Quarterly town hall", organizer)
    stage.log(f"{organizer.name} opens the town hall and invites the bot")
    stage.invite_bot(meeting_id)
    present: list[str] = []
    for index in range(1000):
        await stage.sleep(stage.rng.expovariate(1000 / 120))
        participant_id = stage.join(
            meeting_id, make_person(stage.rng), muted=stage.rng.random() < 0.8
        )
        if participant_id:
            present.append(participant_id)
        if index % 100 == 99:
            stage.log(f"{index + 1} people in the town hall")
    stage.log("everyone is in; churn begins")
    while stage.elapsed() < duration:
        await stage.sleep(stage.rng.expovariate(2.0))
        roll = stage.rng.random()
        if roll < 0.4 and present:
            stage.leave(meeting_id, present.pop(stage.rng.randrange(len(present))))
        elif roll < 0.8:
            participant_id = stage.join(meeting_id, make_person(stage.rng), muted=True)
            if participant_id:
                present.append(participant_id)
        elif present:
            stage.set_muted(
                meeting_id, stage.rng.choice(present), stage.rng.random() < 0.5
            )


async def burst(stage: Stage, duration: float) -> None:
    """100 people call the bot within a couple of seconds."""
    stage.log("100 incoming calls at once")
    for _ in range(100):
        person = make_person(stage.rng, phone=stage.rng.random() < 0.3)
        stage.spawn(caller(stage, person, talk=stage.rng.uniform(20, 120)))
        await stage.sleep(stage.rng.uniform(0, 0.04))
    await stage.sleep(duration)


async def mixed(stage: Stage, duration: float) -> None:
    """A steady, realistic background: calls, IVR callers, small meetings, escalations."""
    while stage.elapsed() < duration:
        await stage.sleep(stage.rng.expovariate(1 / 6))
        roll = stage.rng.random()
        if roll < 0.55:
            person = make_person(stage.rng, phone=stage.rng.random() < 0.3)
            stage.log(f"{person.name} calls the bot")
            stage.spawn(caller(stage, person, talk=stage.rng.uniform(15, 180)))
        elif roll < 0.75:
            person = make_person(stage.rng)
            stage.log(f"{person.name} calls the bot and uses the menu")
            stage.spawn(
                caller(
                    stage,
                    person,
                    talk=stage.rng.uniform(20, 90),
                    keys=stage.rng.randint(1, 4),
                )
            )
        elif roll < 0.9:
            stage.spawn(_small_meeting(stage))
        else:
            person, other = make_person(stage.rng), make_person(stage.rng)
            stage.log(f"{person.name} calls the bot and will add {other.name}")
            stage.spawn(
                caller(
                    stage, person, talk=stage.rng.uniform(30, 120), escalate_to=other
                )
            )


async def _small_meeting(stage: Stage) -> None:
    organizer = make_person(stage.rng)
    meeting_id = stage.create_meeting(f"{organizer.name.split()[0]}'s sync", organizer)
    stage.log(f"{organizer.name} starts a meeting and invites the bot")
    stage.invite_bot(meeting_id)
    for _ in range(stage.rng.randint(3, 6)):
        stage.spawn(
            attendee(
                stage,
                meeting_id,
                make_person(stage.rng),
                stage.rng.uniform(0, 30),
                stage.rng.uniform(60, 300),
            )
        )
    await stage.sleep(0)


Scenario = Callable[[Stage, float], Awaitable[None]]

SCENARIOS: dict[str, Scenario] = {
    "ivr-operator": ivr_operator,
    "standup": standup,
    "townhall": townhall,
    "burst": burst,
    "mixed": mixed,
}
DEFAULT_SCENARIO = "mixed"
