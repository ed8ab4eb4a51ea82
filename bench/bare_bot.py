"""The baseline for bench/ivr_cpu.py's ring -> answer: a bare ASGI bot that
answers every new incoming call straight from its webhook, served by the same
daphne build as Callbot.

It reads the notification, answers 202 and, for a ``created`` call that is
``incoming``, POSTs ``/answer`` to the emulator (service-hosted media, itself as
the callback): no token check, no database, no broker, no policy. Its token comes
from the emulator's token endpoint once, before the first call. What the bench
measures against it is the emulator's own delivery, daphne and one HTTP request.

    EMULATOR_URL=https://127.0.0.1:<port> GRAPH_CA_BUNDLE=<ca.pem> \\
        daphne -p <port> bench.bare_bot:application
"""

from __future__ import annotations

import json
import os
import ssl
from typing import Any

import httpx

from callbot.simulator.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT_ID,
)
from callbot.simulator.identity import GRAPH_AUDIENCE

_state: dict[str, Any] = {}


async def _client() -> tuple[httpx.AsyncClient, str]:
    if "client" not in _state:
        base = os.environ["EMULATOR_URL"]
        verify = ssl.create_default_context(cafile=os.environ["GRAPH_CA_BUNDLE"])
        client = httpx.AsyncClient(base_url=base, verify=verify, timeout=10)
        token = await client.post(
            f"/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
                "scope": f"{GRAPH_AUDIENCE}/.default",
            },
        )
        _state["client"] = client
        _state["token"] = token.json()["access_token"]
    return _state["client"], _state["token"]


def _incoming_calls(body: bytes) -> list[str]:
    """Graph ids of the calls a batch announces as new and ringing."""
    ids = []
    for note in json.loads(body).get("value", []):
        data = note.get("resourceData") or {}
        if note.get("changeType") == "created" and data.get("state") == "incoming":
            ids.append(note["resourceUrl"].rsplit("/", 1)[-1])
    return ids


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})
    calls = _incoming_calls(b"".join(chunks))
    if not calls:
        return
    client, token = await _client()
    me = f"http://{scope['server'][0]}:{scope['server'][1]}{scope['path']}"
    for call_id in calls:
        await client.post(
            f"/v1.0/communications/calls/{call_id}/answer",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "callbackUri": me,
                "acceptedModalities": ["audio"],
                "mediaConfig": {
                    "@odata.type": "#microsoft.graph.serviceHostedMediaConfig"
                },
            },
        )
