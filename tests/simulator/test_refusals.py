"""The emulator refuses what Graph refuses, with Graph's status and error body.

Each case: the request, the status, and the error's ``code`` and ``message``
(contract §6.8, §6.14, §6.16, §11.1); the body always has the one ``error`` member
with its ``innerError`` correlation block.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.simulator.conftest import (
    APP_MEDIA,
    LEE,
    meeting_with_bot,
    ring_and_answer,
)
from tests.support.emulator import RecordingWebhook, RunningEmulator


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "innerError"}
    assert set(body["error"]["innerError"]) == {
        "date",
        "request-id",
        "client-request-id",
    }
    return response.status_code, body["error"]["code"], body["error"]["message"]


def peer_of(graph: httpx.Client, call_id: str) -> str:
    bot = graph.get(f"/communications/calls/{call_id}").json()["myParticipantId"]
    everyone = graph.get(f"/communications/calls/{call_id}/participants").json()
    return str(next(p["id"] for p in everyone["value"] if p["id"] != bot))


def test_the_bot_mutes_itself_only_in_group_calls(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    mute = graph.post(f"/communications/calls/{call_id}/mute", json={})
    unmute = graph.post(f"/communications/calls/{call_id}/unmute", json={})

    expected = (
        400,
        "BadRequest",
        "Muting the bot is only available in group calls and meetings.",
    )
    assert refusal(mute) == refusal(unmute) == expected


def test_others_are_muted_and_removed_only_in_group_calls(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph, caller=LEE)
    peer = peer_of(graph, call_id)

    mute = graph.post(
        f"/communications/calls/{call_id}/participants/{peer}/mute", json={}
    )
    remove = graph.delete(f"/communications/calls/{call_id}/participants/{peer}")

    assert refusal(mute) == (
        400,
        "BadRequest",
        "Muting a participant is only available in group calls and meetings.",
    )
    assert refusal(remove) == (
        400,
        "BadRequest",
        "Removing a participant is only available in group calls and meetings.",
    )


def test_nobody_is_unmuted_by_the_bot(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    meeting, call_id = meeting_with_bot(emulator, webhook, graph)
    ana = emulator.control(
        "POST",
        f"/meetings/{meeting['id']}/participants",
        {"user": {"displayName": "Ana Lopez"}, "muted": True},
    )["participantId"]

    response = graph.post(
        f"/communications/calls/{call_id}/participants/{ana}/unmute", json={}
    )

    assert refusal(response) == (
        400,
        "BadRequest",
        "Resource not found for the segment 'unmute'.",
    )


def test_screen_sharing_role_is_refused_on_service_hosted_media(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    _, call_id = meeting_with_bot(emulator, webhook, graph)

    response = graph.post(
        f"/communications/calls/{call_id}/changeScreenSharingRole",
        json={"role": "sharer"},
    )

    assert refusal(response) == (
        400,
        "BadRequest",
        "changeScreenSharingRole needs a call with appHostedMediaConfig.",
    )


def test_screen_sharing_role_is_refused_in_a_peer_to_peer_call(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    call_id = ring_and_answer(emulator, webhook, graph)

    response = graph.post(
        f"/communications/calls/{call_id}/changeScreenSharingRole",
        json={"role": "viewer"},
    )

    assert refusal(response) == (
        400,
        "BadRequest",
        "changeScreenSharingRole is only available in group calls and meetings.",
    )


def test_screen_sharing_role_needs_access_media_permission(
    emulator: RunningEmulator, webhook: RecordingWebhook, graph: httpx.Client
) -> None:
    _, call_id = meeting_with_bot(emulator, webhook, graph, media=APP_MEDIA)
    emulator.control(
        "PATCH", "/config", {"revokePermissions": ["Calls.AccessMedia.All"]}
    )

    with emulator.graph() as limited:  # a new token, without the role
        response = limited.post(
            f"/communications/calls/{call_id}/changeScreenSharingRole",
            json={"role": "sharer"},
        )

    assert refusal(response) == (
        403,
        "Forbidden",
        "Application is not authorized to perform this action: requires "
        "Calls.AccessMedia.All.",
    )


def test_revoking_a_permission_drops_it_from_the_next_tokens_roles(
    emulator: RunningEmulator,
) -> None:
    before = emulator.control("GET", "/config")["permissions"]

    after = emulator.control(
        "PATCH", "/config", {"revokePermissions": ["Calls.JoinGroupCall.All"]}
    )["permissions"]
    bad = emulator.http().patch(
        "/_emulator/config", json={"revokePermissions": "Calls.JoinGroupCall.All"}
    )

    assert "Calls.JoinGroupCall.All" in before
    assert after == [p for p in before if p != "Calls.JoinGroupCall.All"]
    assert bad.status_code == 400
    assert "revokePermissions" in bad.json()["error"]["message"]
