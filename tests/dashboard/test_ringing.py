"""Ringing calls over the live socket: the supervisor's answer, reject and redirect,
their refusals, the choices in ``hello``, and the answer deadline on the board row."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from django.contrib.sessions.models import Session
from django.utils import timezone

import pytest
from channels.db import database_sync_to_async

from callbot.calls import enqueue, lifecycle, perform, tasks
from callbot.calls.models import Action, AuditEntry, Call, RedirectTarget
from callbot.calls.states import CallState
from callbot.ivr.models import IvrFlow, IvrSession
from dashboard import consumers, incoming
from tests.dashboard.sockets import connect, open_socket, snapshot
from tests.factories import CallFactory

LEE_ID = "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live", "enqueued"),
]


def ringing(rang_for: float = 1.0) -> Call:
    call: Call = CallFactory(state=CallState.INCOMING, source_display="Ana Lopez")
    # created_at is auto_now_add: move it by an update, as the clock would.
    Call.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - timedelta(seconds=rang_for)
    )
    call.refresh_from_db()
    return call


async def ask(user: Any, call: Call, kind: str, **params: Any) -> dict[str, Any]:
    socket = await open_socket(user)
    await socket.send_json_to(
        {
            "type": "action",
            "request_id": "r1",
            "call": call.pk,
            "kind": kind,
            "params": params,
        }
    )
    answer: dict[str, Any] = await socket.receive_json_from()
    await socket.disconnect()
    return answer


async def test_a_supervisor_answers_a_ringing_call(bob: Any) -> None:
    call = await database_sync_to_async(ringing)()

    answer = await ask(bob, call, "answer")

    assert answer["type"] == "action.accepted", answer
    action = await Action.objects.aget(call=call)
    assert (action.kind, action.status, action.requested_by_id) == (
        "answer",
        "queued",
        bob.pk,
    )


async def test_with_in_process_tasks_an_answer_is_performed_claimed_after_its_commit(
    bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded default: the asking thread performs the answer right after the
    commit, stored claimed, with no claim of its own; recorded and audited first."""
    call = await database_sync_to_async(ringing)()
    seen: list[tuple[str, int, bool, bool]] = []

    def answer(client: Any, action: Action) -> None:
        stored = Action.objects.get(pk=action.pk)  # committed, as stored
        audited = AuditEntry.objects.filter(
            action_ref=action.pk, outcome="requested"
        ).exists()
        seen.append(
            (stored.status, stored.attempts, audited, bool(stored.claimed_until))
        )

    def no_claim(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("claimed a second time")

    monkeypatch.setattr(incoming, "perform_kept", tasks.perform_kept)
    monkeypatch.setitem(perform.PERFORMERS, Action.Kind.ANSWER, answer)
    monkeypatch.setattr(lifecycle, "claim_action", no_claim)
    monkeypatch.setattr(enqueue, "eager", lambda: True)  # as without REDIS_URL

    answer = await ask(bob, call, "answer")

    assert answer["type"] == "action.accepted", answer
    assert seen == [("queued", 1, True, True)]


async def test_with_a_worker_an_answer_goes_to_the_broker(
    bob: Any, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    call = await database_sync_to_async(ringing)()
    monkeypatch.setattr(enqueue, "eager", lambda: False)

    answer = await ask(bob, call, "answer")

    assert answer["type"] == "action.accepted", answer
    action = await Action.objects.aget(call=call)
    assert enqueued == [action.pk]
    assert (action.status, action.attempts, action.claimed_until) == ("queued", 0, None)


async def test_a_supervisor_rejects_with_one_of_the_contracts_reasons(
    bob: Any,
) -> None:
    call = await database_sync_to_async(ringing)()

    wrong = await ask(bob, call, "reject", reason="go away")
    right = await ask(bob, call, "reject", reason="forbidden")

    assert (wrong["type"], wrong["code"]) == ("action.refused", "invalid")
    assert "none, busy or forbidden" in wrong["message"]
    assert right["type"] == "action.accepted", right
    action = await Action.objects.aget(call=call)
    assert action.parameters == {"reason": "forbidden"}


async def test_a_redirect_to_an_unknown_saved_target_is_refused_and_audited(
    bob: Any,
) -> None:
    call = await database_sync_to_async(ringing)()
    gone = await RedirectTarget.objects.acreate(
        name="Old desk", kind="user", value=LEE_ID, enabled=False
    )

    answer = await ask(bob, call, "redirect", saved_target=gone.pk)

    assert (answer["type"], answer["code"]) == ("action.refused", "invalid")
    assert f"no saved redirect target {gone.pk}" in answer["message"]
    assert not await Action.objects.filter(call=call).aexists()
    assert await AuditEntry.objects.filter(
        actor=bob, action="redirect", outcome="refused"
    ).aexists()


async def test_a_redirect_to_a_saved_target_stores_its_identity(bob: Any) -> None:
    call = await database_sync_to_async(ringing)()
    desk = await RedirectTarget.objects.acreate(
        name="Service desk", kind="phone", value="+14255550100"
    )

    answer = await ask(bob, call, "redirect", saved_target=str(desk.pk))

    assert answer["type"] == "action.accepted", answer
    action = await Action.objects.aget(call=call)
    assert action.parameters == {
        "target": {"phone": "+14255550100", "display_name": "Service desk"}
    }


async def test_a_call_past_its_answer_deadline_is_refused(bob: Any) -> None:
    call = await database_sync_to_async(ringing)(rang_for=15.5)

    answers = [await ask(bob, call, kind) for kind in ("answer", "reject")]

    for answer in answers:
        assert (answer["type"], answer["code"]) == ("action.refused", "wrong_state")
        assert "Teams waits 15 s" in answer["message"]
    assert not await Action.objects.filter(call=call).aexists()


async def test_an_answered_call_cannot_be_answered_again(bob: Any) -> None:
    call = await database_sync_to_async(CallFactory)(state=CallState.ESTABLISHED)

    answer = await ask(bob, call, "answer")

    assert (answer["type"], answer["code"]) == ("action.refused", "wrong_state")


async def test_an_auditor_may_not_decide_a_ringing_call(carol: Any) -> None:
    call = await database_sync_to_async(ringing)()

    answer = await ask(carol, call, "answer")

    assert (answer["type"], answer["code"]) == ("action.refused", "forbidden")


async def test_a_supervisor_answers_into_a_chosen_flow(bob: Any) -> None:
    call = await database_sync_to_async(ringing)()
    flow = await IvrFlow.objects.acreate(
        name="hello",
        start="bye",
        steps=[{"id": "bye", "type": "hang_up"}],
    )

    unknown = await ask(bob, call, "answer", flow=flow.pk + 100)
    known = await ask(bob, call, "answer", flow=flow.pk)

    assert (unknown["type"], unknown["code"]) == ("action.refused", "invalid")
    assert "no IVR flow" in unknown["message"]
    assert known["type"] == "action.accepted", known
    assert [a["kind"] for a in known["actions"]] == ["answer"]
    session = await IvrSession.objects.aget(call=call)
    assert session.flow_id == flow.pk
    action = await Action.objects.aget(call=call)
    assert action.requested_by_id == bob.pk


async def test_hello_offers_flows_and_saved_targets_to_people_who_act(
    bob: Any, carol: Any
) -> None:
    await IvrFlow.objects.acreate(
        name="operator", start="bye", steps=[{"id": "bye", "type": "hang_up"}]
    )
    desk = await RedirectTarget.objects.acreate(
        name="Service desk", kind="user", value=LEE_ID
    )
    await RedirectTarget.objects.acreate(
        name="Retired", kind="user", value=LEE_ID.replace("b", "c"), enabled=False
    )
    hellos = []
    for user in (bob, carol):
        socket = await connect(user)
        await socket.connect()
        hellos.append(await socket.receive_json_from())
        await socket.disconnect()

    supervisor, auditor = hellos
    assert [f["name"] for f in supervisor["answer_flows"]] == ["operator"]
    assert supervisor["redirect_targets"] == [
        {"id": desk.pk, "name": "Service desk", "kind": "user"}
    ]
    assert "answer_flows" not in auditor
    assert "redirect_targets" not in auditor


async def test_a_ringing_board_row_says_when_teams_stops_waiting(bob: Any) -> None:
    call = await database_sync_to_async(ringing)()
    await database_sync_to_async(CallFactory)(state=CallState.ESTABLISHED)
    socket = await open_socket(bob)

    board = await snapshot(socket, board=True)
    await socket.disconnect()

    rows = {row["id"]: row for row in board["calls"]}
    deadline = call.created_at + timedelta(seconds=15)
    assert rows[call.pk]["answer_by"] == deadline.isoformat()
    assert [r["answer_by"] for r in rows.values() if r["id"] != call.pk] == [None]


async def test_an_answer_reads_the_session_and_is_asked_for_in_one_trip(
    bob: Any, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session is read afresh for every action, in the same trip to the
    database thread as the request itself (each trip is a hand-over of the
    interpreter that a busy process makes several milliseconds long)."""
    call = await database_sync_to_async(ringing)()
    threads: list[tuple[str, int]] = []

    def on_thread(name: str, real: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            threads.append((name, threading.get_ident()))
            return real(*args, **kwargs)

        return run

    for name in ("session_user", "_perform"):
        monkeypatch.setattr(consumers, name, on_thread(name, getattr(consumers, name)))

    answer = await ask(bob, call, "answer")

    assert answer["type"] == "action.accepted", answer
    assert [name for name, _ in threads] == ["session_user", "_perform"]
    assert threads[0][1] == threads[1][1] != threading.get_ident()
    assert len(enqueued) == 1


async def test_an_answer_from_a_session_that_has_ended_is_not_taken(
    bob: Any, enqueued: list[int]
) -> None:
    call = await database_sync_to_async(ringing)()
    socket = await open_socket(bob)
    # Gone from the store without the sign-out signal (expired, cleared).
    await Session.objects.all().adelete()

    await socket.send_json_to(
        {"type": "action", "request_id": "r1", "call": call.pk, "kind": "answer"}
    )

    assert await socket.receive_output() == {"type": "websocket.close", "code": 4401}
    assert not await Action.objects.filter(call=call).aexists()
    assert enqueued == []
    await socket.disconnect()
