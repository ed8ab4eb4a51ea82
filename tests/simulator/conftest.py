"""Fixtures: one emulator and one recording webhook per session, reset per test.

The emulator runs on a real TLS socket (uvicorn in a thread); the webhook validates
every notification's JWT against the emulator's JWKS. Builders live in
``tests/support/emulator.py`` so end-to-end tests can reuse them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests

from tests.support.emulator import (
    RecordingWebhook,
    RunningEmulator,
    start_emulator,
    start_webhook,
)

SERVICE_MEDIA = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}
APP_MEDIA = {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "<media>"}
ANA = {
    "user": {"id": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170", "displayName": "Ana Lopez"}
}
LEE = {
    "user": {"id": "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4", "displayName": "Lee Chen"}
}
RAVI = {
    "user": {"id": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918", "displayName": "Ravi Iyer"}
}


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield running
    # msal's requests sessions keep an idle TLS connection to the emulator, which
    # its server would wait on for ten seconds at shutdown; close them first.
    gc.collect()
    for thing in gc.get_objects():
        # type(), not isinstance(): a weak proxy whose object is gone raises
        # ReferenceError on isinstance (it asks the proxy for __class__).
        if issubclass(type(thing), requests.Session):
            thing.close()
    running.stop()


@pytest.fixture(scope="session")
def webhook(emulator: RunningEmulator) -> Iterator[RecordingWebhook]:
    hook = start_webhook(emulator)
    yield hook
    hook.stop()


@pytest.fixture(autouse=True)
def clean(emulator: RunningEmulator, webhook: RecordingWebhook) -> Iterator[None]:
    emulator.reset(webhook.url)
    webhook.clear()
    yield
    emulator.control("DELETE", "/faults")


@pytest.fixture
def graph(emulator: RunningEmulator) -> Iterator[httpx.Client]:
    client = emulator.graph()
    yield client
    client.close()


def answer_body(webhook: RecordingWebhook, **extra: Any) -> dict[str, Any]:
    return {
        "callbackUri": webhook.url,
        "acceptedModalities": ["audio"],
        "mediaConfig": SERVICE_MEDIA,
        **extra,
    }


def ring_and_answer(
    emulator: RunningEmulator,
    webhook: RecordingWebhook,
    graph: httpx.Client,
    caller: dict[str, Any] = ANA,
) -> str:
    """A user calls the bot and the bot answers; returns the call id once established."""
    call_id: str = emulator.control("POST", "/calls/incoming", {"from": caller})[
        "callId"
    ]
    response = graph.post(
        f"/communications/calls/{call_id}/answer", json=answer_body(webhook)
    )
    assert response.status_code == 202
    webhook.wait_for(
        lambda n: any((i["resourceData"] or {}).get("mediaState") for i in n), call_id
    )
    return call_id


def meeting_with_bot(
    emulator: RunningEmulator,
    webhook: RecordingWebhook,
    graph: httpx.Client,
    delta: bool = False,
    media: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """A meeting the bot joined (by chatInfo + organizerMeetingInfo); returns it and the call id."""
    meeting = emulator.control("POST", "/meetings", {"subject": "Sev2 bridge"})
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": webhook.url,
        "requestedModalities": ["audio"],
        "mediaConfig": media or SERVICE_MEDIA,
        "chatInfo": meeting["chatInfo"],
        "meetingInfo": meeting["meetingInfo"],
        "tenantId": emulator.config.bot.tenant_id,
    }
    if delta:
        body["callOptions"] = {
            "@odata.type": "#microsoft.graph.outgoingCallOptions",
            "isDeltaRosterEnabled": True,
        }
    response = graph.post("/communications/calls", json=body)
    assert response.status_code == 201, response.text
    call_id: str = response.json()["id"]
    webhook.wait_for(
        lambda n: any(i["resourceUrl"].endswith("/participants") for i in n), call_id
    )
    return meeting, call_id


def rosters(webhook: RecordingWebhook, call_id: str) -> list[Any]:
    return [
        i["resourceData"]
        for i in webhook.notifications(call_id)
        if i["resourceUrl"].endswith("/participants")
    ]
