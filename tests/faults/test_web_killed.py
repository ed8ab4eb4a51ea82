"""daphne SIGKILLed in the middle of webhook traffic, and a new one started.

The emulator plays several meetings (people join, leave, mute) and people ringing
the bot, while the test plays the bot on Graph. One webhook request is held inside
its transaction (a lock on the notification log) when daphne dies, and others are
queued behind it; the emulator delivers every unacknowledged batch again, as the
calling platform does after a connection failure (same body, same message id).
Afterwards the database must agree with the emulator: every notification it
delivered stored exactly once, in an unbroken per-call sequence, every call in the
emulator's state and every live roster with the same people muted the same way.

What a request sends after its commit is another matter: a daphne that dies
between its commit and its 202 takes its call activity with it, so ingest
sends it again for a redelivered batch whose calls still wait on it (the last
test: a call rung then is still answered).

Both run both ways (``webhook_apply``). Deferred (the default with PostgreSQL
and Redis) the request's transaction is the inbox row's INSERT, and what commits
a batch's notifications is daphne's applier process: the second kill takes it
(and daphne) after its commit and before its after-commit work, a batch Graph
will not deliver again (it was answered), so its row, not yet deleted, is
applied again by the next applier.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.faults.stack import Stack, manage
from tests.support.emulator import RunningEmulator, wait_until

pytestmark = [pytest.mark.faults]

SERVICE_MEDIA = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}
MEETINGS = 3


class Traffic(threading.Thread):
    """Microsoft's side of a busy minute: people join, leave and mute themselves in
    the bot's meetings and ring the bot; the bot answers every other call.

    Runs until ``stop``; its own HTTP clients (the test's are not shared across
    threads). Requests that race a call's end (409/404) are shrugged off, as a
    person's client would.
    """

    def __init__(
        self, emulator: RunningEmulator, webhook: str, meetings: list[str]
    ) -> None:
        super().__init__(daemon=True)
        self.webhook = webhook
        self.meetings = meetings
        self.people: dict[str, list[str]] = {m: [] for m in meetings}
        self.rng = random.Random(7)
        self.control = httpx.Client(
            base_url=f"{emulator.url}/_emulator",
            verify=emulator.ssl_context(),
            timeout=10,
        )
        self.graph = emulator.graph()
        self.steps = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.is_set():
                with contextlib.suppress(httpx.HTTPStatusError):
                    self.step()
                self.steps += 1
                time.sleep(0.01)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def step(self) -> None:
        meeting = self.rng.choice(self.meetings)
        people = self.people[meeting]
        roll = self.rng.random()
        if roll < 0.4 or len(people) < 2:
            joined = self.control.post(
                f"/meetings/{meeting}/participants",
                json={
                    "user": {"displayName": f"Person {self.steps}"},
                    "muted": self.rng.random() < 0.3,
                },
            )
            joined.raise_for_status()
            people.append(joined.json()["participantId"])
        elif roll < 0.6:
            gone = people.pop(self.rng.randrange(len(people)))
            self.control.delete(
                f"/meetings/{meeting}/participants/{gone}"
            ).raise_for_status()
        elif roll < 0.85:
            self.control.patch(
                f"/meetings/{meeting}/participants/{self.rng.choice(people)}",
                json={"muted": self.rng.random() < 0.5},
            ).raise_for_status()
        else:
            rang = self.control.post(
                "/calls/incoming",
                json={"from": {"user": {"displayName": f"Caller {self.steps}"}}},
            )
            rang.raise_for_status()
            if self.steps % 2:
                # Unanswered calls end by Microsoft's answer timer.
                return
            self.graph.post(
                f"/communications/calls/{rang.json()['callId']}/answer",
                json={
                    "callbackUri": self.webhook,
                    "acceptedModalities": ["audio"],
                    "mediaConfig": SERVICE_MEDIA,
                },
            ).raise_for_status()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)
        self.control.close()
        self.graph.close()
        if self.error is not None:
            raise self.error


def bot_joins_meeting(stack: Stack, graph: httpx.Client, delta: bool) -> str:
    """A meeting with the bot in it, joined through Graph; the meeting's id."""
    meeting = stack.emulator.control("POST", "/meetings", {"subject": "Sev2 bridge"})
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": stack.webhook,
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
        "chatInfo": meeting["chatInfo"],
        "meetingInfo": meeting["meetingInfo"],
        "tenantId": stack.emulator.config.bot.tenant_id,
    }
    if delta:
        body["callOptions"] = {
            "@odata.type": "#microsoft.graph.outgoingCallOptions",
            "isDeltaRosterEnabled": True,
        }
    graph.post("/communications/calls", json=body).raise_for_status()
    meeting_id: str = meeting["id"]
    return meeting_id


def delivery(stack: Stack) -> dict[str, Any]:
    stats: dict[str, Any] = stack.emulator.control("GET", "/stats")["notifications"]
    return stats


def hold_the_webhook_in_a_transaction_and_kill_daphne(
    stack: Stack, web: Any, mode: str
) -> None:
    """Kill daphne while a webhook request is inside its transaction.

    The request is made to wait on a lock (inline: on the notification log,
    after it has written or locked its calls; deferred: on the inbox, in its
    row's INSERT); more batches queue in daphne behind it. The lock is let go
    once daphne is dead: the dead request's transaction rolls back.
    """
    table = "calls_inboxbatch" if mode == "deferred" else "calls_callevent"
    url = stack.pg.url(stack.database)
    with (
        psycopg.connect(url) as blocker,
        psycopg.connect(url, autocommit=True) as admin,
    ):
        blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        wait_until(
            lambda: admin.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND query ILIKE %s",
                ["INSERT%" if mode == "deferred" else "%"],
            ).fetchall(),
            timeout=10,
        )
        wait_until(lambda: delivery(stack)["inFlight"] >= 2, timeout=10)
        web.kill()
        blocker.rollback()


def stored_notifications(stack: Stack) -> int:
    count: int = stack.rows("SELECT count(*) AS n FROM calls_callevent")[0]["n"]
    return count


def kill_daphne_after_a_commit_before_its_answer(stack: Stack, web: Any) -> int:
    """Kill daphne after it committed a batch and before it answered 202.

    What a webhook request does after its commit (the live deltas, the call
    activity task) goes to Redis; with Redis stopped (SIGSTOP) the request waits
    there, its batch stored and not acknowledged. Returns how many stored
    notifications the emulator had not seen acknowledged when daphne died.
    """
    assert stack.redis is not None
    assert stack.redis.process is not None
    redis = stack.redis.process
    redis.send_signal(signal.SIGSTOP)
    try:

        def stuck() -> bool:
            # Wait for the state itself (a batch stored, its POST not answered),
            # not for a quiet moment: on a loaded machine a request can be slow
            # to reach its commit for longer than any pause we could pick.
            before = stored_notifications(stack)
            time.sleep(0.3)
            after = stored_notifications(stack)
            return (
                after == before
                and after > delivery(stack)["delivered"]
                and delivery(stack)["inFlight"] >= 1
            )

        wait_until(stuck, timeout=20)
        unacknowledged: int = stored_notifications(stack) - delivery(stack)["delivered"]
        web.kill()
    finally:
        redis.send_signal(signal.SIGCONT)
    return unacknowledged


def applied_not_deleted(stack: Stack) -> int:
    """Inbox rows whose notifications are stored: their applier committed them
    and had not deleted the row (it does so after the after-commit work)."""
    count: int = stack.rows(
        "SELECT count(*) AS n FROM calls_inboxbatch b WHERE EXISTS ("
        "SELECT 1 FROM calls_callevent e WHERE e.message_id = left(b.message_id, 128))"
    )[0]["n"]
    return count


def kill_daphne_and_its_applier_after_a_commit(stack: Stack, web: Any) -> int:
    """Deferred: kill daphne and its applier process after the applier committed
    a group of batches and before it sent their after-commit work (Redis
    stopped, it waits there) and deleted their rows. Graph had its 202s long
    before: nothing delivers these batches again. Returns how many rows were
    left applied and not deleted."""
    assert stack.redis is not None
    assert stack.redis.process is not None
    redis = stack.redis.process
    [applier] = web.children("apply_inbox")
    redis.send_signal(signal.SIGSTOP)
    try:

        def stuck() -> bool:
            before = stored_notifications(stack)
            time.sleep(0.3)
            return stored_notifications(stack) == before and bool(
                applied_not_deleted(stack)
            )

        wait_until(stuck, timeout=20)
        left = applied_not_deleted(stack)
        os.kill(applier, signal.SIGKILL)
        web.kill()
    finally:
        redis.send_signal(signal.SIGCONT)
    return left


def calls_agree(stack: Stack) -> int:
    """Every call the emulator knows is stored in the emulator's state, and every
    live one's roster agrees; returns how many calls."""
    theirs = {
        c["id"]: c for c in stack.emulator.control("GET", "/calls?ended=1")["value"]
    }
    ours = {
        r["graph_id"]: r
        for r in stack.rows("SELECT id, graph_id, state FROM calls_call")
    }
    assert set(ours) == set(theirs)
    assert {k: c["state"] for k, c in ours.items()} == {
        k: c["state"] for k, c in theirs.items()
    }
    for graph_id, call in ours.items():
        if call["state"] == "terminated" or theirs[graph_id]["kind"] == "p2p":
            continue
        seen = stack.emulator.control("GET", f"/calls/{graph_id}")
        present = stack.rows(
            "SELECT graph_id, is_muted FROM calls_participant "
            "WHERE call_id = %s AND left_at IS NULL",
            call["id"],
        )
        assert {p["graph_id"]: p["is_muted"] for p in present} == {
            p["id"]: p["isMuted"] for p in seen["participantsList"]
        }, graph_id
    return len(ours)


def nothing_lost_nor_doubled(stack: Stack, delivered: int) -> None:
    """Stored notifications equal delivered ones, and each call's sequence is
    unbroken (1..event_count, each once)."""
    assert stack.rows("SELECT count(*) AS n FROM calls_callevent")[0]["n"] == delivered
    broken = stack.rows(
        "SELECT c.graph_id, c.event_count, count(e.id) AS stored, "
        "min(e.sequence) AS first, max(e.sequence) AS last "
        "FROM calls_call c LEFT JOIN calls_callevent e ON e.call_id = c.id "
        "GROUP BY c.id HAVING count(e.id) <> c.event_count "
        "OR count(DISTINCT e.sequence) <> c.event_count "
        "OR min(e.sequence) <> 1 OR max(e.sequence) <> c.event_count"
    )
    assert broken == []


def test_daphne_killed_mid_webhook_traffic_loses_and_doubles_no_notification(
    stack: Stack, webhook_apply: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = stack.start_web()
    emulator = stack.emulator
    # Redeliveries spread over 15 s, not the emulator's 3.7: a new daphne took
    # 5-11 s to listen on this 2-core machine under load, and a batch whose
    # retries all fell in that gap was given up.
    monkeypatch.setattr(emulator.config, "retry_delays", (0.2, 0.5, 1.0, 2.0, 4.0, 8.0))
    # People who ring the bot give up after a second (Microsoft's 15 s, shortened).
    emulator.control("PATCH", "/config", {"answerTimeout": 1.0})
    graph = emulator.graph()
    meetings = [bot_joins_meeting(stack, graph, delta=i == 0) for i in range(MEETINGS)]
    graph.close()
    traffic = Traffic(emulator, stack.webhook, meetings)
    traffic.start()
    try:
        wait_until(lambda: delivery(stack)["delivered"] >= 60, timeout=15)
        hold_the_webhook_in_a_transaction_and_kill_daphne(stack, web, webhook_apply)
        killed = time.monotonic()
        web = stack.start_web(fresh_emulator=False)
        restarted = time.monotonic() - killed
        # Traffic goes on against the new daphne for a while.
        steps = traffic.steps
        wait_until(lambda: traffic.steps >= steps + 40, timeout=15)
        if webhook_apply == "deferred":
            # Its applier starts with the first batch the new daphne stores.
            wait_until(lambda: web.children("apply_inbox"), timeout=10)
            unacknowledged = kill_daphne_and_its_applier_after_a_commit(stack, web)
        else:
            unacknowledged = kill_daphne_after_a_commit_before_its_answer(stack, web)
        stack.start_web(fresh_emulator=False)
        steps = traffic.steps
        wait_until(lambda: traffic.steps >= steps + 40, timeout=15)
    finally:
        traffic.stop()
    # Calls still ringing end by the answer timer; then everything is delivered.
    wait_until(
        lambda: not emulator.control("GET", "/calls?state=incoming")["value"],
        timeout=10,
    )
    emulator.wait_idle(timeout=20)
    stack.wait_inbox_applied()

    stats = delivery(stack)
    print(  # noqa: T201 (the figures docs/reliability.md quotes)
        f"{webhook_apply}: daphne up again {restarted:.2f} s after the kill; "
        f"{unacknowledged} notifications (deferred: batches) stored but not "
        "acknowledged (deferred: applied and not deleted) at the second kill; "
        f"{stats['delivered']} notifications delivered in {stats['posts']} POSTs, "
        f"{stats['retries']} redeliveries, status counts {stats['statusCounts']}"
    )
    # The second kill left work behind: a batch stored and not acknowledged
    # (inline), rows applied and not deleted (deferred).
    assert unacknowledged >= 1
    # The kills cut POSTs off (connection errors), and each was delivered again.
    assert stats["statusCounts"].get("error", 0) >= 1
    assert stats["retries"] >= 1
    assert stats["failed"] == 0
    assert "500" not in stats["statusCounts"]
    nothing_lost_nor_doubled(stack, stats["delivered"])
    assert calls_agree(stack) >= MEETINGS + 3


_ANSWER_EVERY_CALL = """
from callbot.ivr.models import CallPolicy
CallPolicy.objects.create(
    name="Answer every call", match="default", call_kinds="any", action="answer"
)
"""


def test_a_call_rung_while_daphne_dies_after_storing_it_is_still_answered(
    stack: Stack, webhook_apply: str
) -> None:
    """Inline, daphne dies between the commit and the 202 and Graph delivers the
    batch again; deferred, daphne's applier dies (with daphne) between its commit
    and its after-commit work, and the row it left is applied again by beat's
    sweep. Either way the call is announced again and the bot's policy answers
    it."""
    stack.settings["WEBHOOK_INBOX_SWEEP_SECONDS"] = "1"
    web = stack.start_web()
    # Long enough for a daphne (and, deferred, beat) to start after the kill.
    stack.emulator.control("PATCH", "/config", {"answerTimeout": 15.0})
    stack.start_worker(concurrency=2)
    manage(stack.environment(), "shell", "-c", _ANSWER_EVERY_CALL)
    emulator = stack.emulator

    def state(call_id: str) -> str:
        found: str = emulator.control("GET", f"/calls/{call_id}")["state"]
        return found

    # The policy answers a call rung while everything is up.
    usual = emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})
    wait_until(lambda: state(usual["callId"]) == "established", timeout=15)

    assert stack.redis is not None
    assert stack.redis.process is not None
    redis = stack.redis.process
    # Everything about that call applied and sent: the applier (deferred) must
    # not be the one waiting on Redis for an earlier batch's live deltas.
    emulator.wait_idle(timeout=10)
    stack.wait_inbox_applied()
    appliers = web.children("apply_inbox")
    redis.send_signal(signal.SIGSTOP)
    try:
        rung = emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})
        # Stored (committed), and its after-commit work not sent: daphne
        # (inline) or its applier (deferred) waits on Redis.
        wait_until(
            lambda: stack.rows(
                "SELECT id FROM calls_call WHERE graph_id = %s", rung["callId"]
            ),
            timeout=10,
        )
        time.sleep(0.3)
        if webhook_apply == "deferred":
            assert appliers
            assert applied_not_deleted(stack) == 1
            for applier in appliers:
                os.kill(applier, signal.SIGKILL)
        else:
            assert delivery(stack)["inFlight"] >= 1
        web.kill()
    finally:
        redis.send_signal(signal.SIGCONT)
    stack.start_web(fresh_emulator=False)
    if webhook_apply == "inline":
        wait_until(lambda: delivery(stack)["retries"] >= 1, timeout=10)
    else:
        # Beat's sweep finds the row (started only now: a sweep before the kill
        # could have applied it in the worker instead of daphne's applier).
        stack.start_beat()
    emulator.wait_idle(timeout=10)
    # The call whose notification the dead process committed is answered.
    wait_until(lambda: state(rung["callId"]) == "established", timeout=15)
    # The worker and the new daphne are fine: a call rung now is answered.
    later = emulator.control("POST", "/calls/incoming", {"from": {"user": {}}})
    wait_until(lambda: state(later["callId"]) == "established", timeout=10)
