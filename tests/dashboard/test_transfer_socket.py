"""Transfers over the live socket: a consultative transfer is queued with the
other call's id as replacesCallId, and one that cannot be made is refused with
a sentence and audited."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from callbot.calls.models import Action, AuditEntry
from tests.dashboard.sockets import open_socket
from tests.factories import CallFactory

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("live", "enqueued"),
]

LEE = "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"


def calls() -> tuple[Any, Any]:
    with_caller = CallFactory(
        source={"identity": {"user": {"id": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170"}}}
    )
    with_target = CallFactory(
        direction="outgoing", targets=[{"user_id": LEE, "display_name": "Lee Chen"}]
    )
    return with_caller, with_target


async def ask(socket: Any, call: int, params: dict[str, Any]) -> dict[str, Any]:
    await socket.send_json_to(
        {
            "type": "action",
            "request_id": "t1",
            "call": call,
            "kind": "transfer",
            "params": params,
        }
    )
    answer: dict[str, Any] = await socket.receive_json_from()
    while answer.get("request_id") != "t1":
        answer = await socket.receive_json_from()
    return answer


async def test_a_consultative_transfer_is_accepted_with_the_other_calls_id(
    bob: Any,
) -> None:
    with_caller, with_target = await database_sync_to_async(calls)()
    socket = await open_socket(bob)

    answer = await ask(socket, with_caller.pk, {"consult_call": with_target.pk})
    await socket.disconnect()

    assert answer["type"] == "action.accepted"
    (shape,) = answer["actions"]
    assert shape["kind"] == "transfer"
    assert shape["call_id"] == with_caller.pk
    assert shape["target"] == "Lee Chen (consultative)"
    action = await Action.objects.aget(pk=shape["id"])
    assert action.parameters["replaces_call_id"] == with_target.graph_id


async def test_a_transfer_to_its_own_call_is_refused_and_audited(bob: Any) -> None:
    with_caller, _ = await database_sync_to_async(calls)()
    socket = await open_socket(bob)

    answer = await ask(socket, with_caller.pk, {"consult_call": with_caller.pk})
    await socket.disconnect()

    assert answer["type"] == "action.refused"
    assert answer["code"] == "invalid"
    assert "must be another call" in answer["message"]
    assert await AuditEntry.objects.filter(
        actor=bob, action="transfer", outcome="refused"
    ).aexists()
    assert not await Action.objects.aexists()
