"""Shared fixtures for the Graph edge: a respx router standing in for Graph, a client
wired to it with a static token provider and a fake sleep, and the actors the
contract's examples use (Ana the caller, Lee the agent, the Helpdesk bot)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from callbot.graph.client import GraphClient
from callbot.graph.resources import Identity
from callbot.graph.tokens import StaticTokenProvider

BASE_URL = "https://graph.test/v1.0"
TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
CALL_ID = "4b1f0a00-6c2e-4f0b-9d1e-3a2b1c0d9e8f"
PARTICIPANT_ID = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"
OPERATION_ID = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
CALLBACK = "https://bot.example.net/api/calling"

ANA = Identity(
    kind="user",
    id="e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170",
    display_name="Ana Lopez",
    tenant_id="",
)
LEE = Identity(
    kind="user",
    id="b2a19087-f6e5-4d4c-b3a2-918070f6e5d4",
    display_name="",
    tenant_id="",
)
BOT = Identity(
    kind="application",
    id="6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10",
    display_name="Helpdesk Bot",
    tenant_id="",
)


@pytest.fixture
def graph() -> Iterator[respx.Router]:
    """Graph as a respx router; every route a test declares must be called."""
    router = respx.Router(assert_all_called=False)
    yield router
    router.assert_all_called()


@pytest.fixture
def static_tokens() -> StaticTokenProvider:
    """Hands out ``token-1``, then ``token-2`` once the client invalidates it."""
    return StaticTokenProvider("token-1", "token-2")


@pytest.fixture
def sleeps() -> list[float]:
    """Every delay the client asked to sleep, in order (it never really sleeps)."""
    return []


@pytest.fixture
def graph_client(
    graph: respx.Router, static_tokens: StaticTokenProvider, sleeps: list[float]
) -> Iterator[GraphClient]:
    with GraphClient(
        BASE_URL,
        static_tokens,
        timeout=5,
        retry_budget_seconds=10,
        transport=httpx.MockTransport(graph.handler),
        sleep=sleeps.append,
    ) as graph_client:
        yield graph_client


def sent_json(route: respx.Route, index: int = -1) -> Any:
    """The JSON body of a request a route received."""
    return json.loads(route.calls[index].request.content)


def error_body(code: str, message: str, **inner: str) -> dict[str, Any]:
    """A §11.1 error body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2025-03-04T15:02:11", **inner},
        }
    }
