"""``MsalTokenProvider`` with real msal against the emulator's token endpoint.

tests/graph/test_tokens.py proves the provider's caching and error mapping against a
minimal identity server; here the same code meets the emulator that stands in for
Entra ID in every other end-to-end test: its OpenID discovery, its TLS from a local
CA, its token lifetimes and its error bodies.
"""

from __future__ import annotations

import jwt
import pytest

from callbot.graph.client import GraphClient
from callbot.graph.errors import GraphAuthError, GraphNotFoundError
from callbot.graph.tokens import MsalTokenProvider
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e

SCOPE = "https://graph.microsoft.com/.default"


class FakeClock:
    """The provider's clock, moved by hand (msal keeps its own, the real one)."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fresh_emulator(
    emulator: RunningEmulator, idle_connections_closed: None
) -> RunningEmulator:
    emulator.reset()
    return emulator


def provider(
    emulator: RunningEmulator, clock: FakeClock | None = None, secret: str = ""
) -> MsalTokenProvider:
    bot = emulator.config.bot
    return MsalTokenProvider(
        client_id=bot.client_id,
        client_secret=secret or bot.client_secret,
        authority=emulator.authority,
        scope=SCOPE,
        ca_bundle=str(emulator.ca_path),
        clock=clock or FakeClock(),
    )


def issued(emulator: RunningEmulator) -> int:
    count: int = emulator.control("GET", "/stats")["graph"]["tokensIssued"]
    return count


def test_the_token_carries_the_apps_roles_and_opens_graph(
    fresh_emulator: RunningEmulator,
) -> None:
    tokens = provider(fresh_emulator)

    token = tokens.get_token()

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["appid"] == fresh_emulator.config.bot.client_id
    assert claims["tid"] == fresh_emulator.config.bot.tenant_id
    assert "Calls.Initiate.All" in claims["roles"]
    # The emulator's Graph accepts it: an unknown call is a 404, not a 401.
    with (
        GraphClient(
            f"{fresh_emulator.url}/v1.0", tokens, ca_bundle=str(fresh_emulator.ca_path)
        ) as client,
        pytest.raises(GraphNotFoundError),
    ):
        client.get_call("no-such-call")


def test_a_token_is_reused_until_near_expiry_without_asking_the_endpoint(
    fresh_emulator: RunningEmulator,
) -> None:
    clock = FakeClock()
    tokens = provider(fresh_emulator, clock)
    before = issued(fresh_emulator)
    first = tokens.get_token()

    clock.now += 3599 - 331  # one second before the provider's own margin
    again = tokens.get_token()

    assert again == first
    assert issued(fresh_emulator) == before + 1


def test_a_token_already_inside_the_expiry_margin_is_never_reused(
    fresh_emulator: RunningEmulator,
) -> None:
    # 200 s tokens are inside both margins (ours, 330 s; msal's, 300 s) from the
    # start, so each request needs a fresh one: nothing near expiry is handed out.
    fresh_emulator.control("PATCH", "/config", {"tokenLifetime": 200})
    tokens = provider(fresh_emulator)
    before = issued(fresh_emulator)

    first = tokens.get_token()
    second = tokens.get_token()

    assert first != second
    assert issued(fresh_emulator) == before + 2
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 200


def test_a_wrong_secret_is_a_typed_auth_error_that_hides_the_secret(
    fresh_emulator: RunningEmulator,
) -> None:
    tokens = provider(fresh_emulator, secret="not-the-secret-at-all")
    before = issued(fresh_emulator)

    with pytest.raises(GraphAuthError) as caught:
        tokens.get_token()

    error = caught.value
    assert error.code == "invalid_client"
    assert not error.retryable
    assert "AADSTS7000215" in error.message
    assert "not-the-secret-at-all" not in str(error)
    assert issued(fresh_emulator) == before


def test_closing_the_provider_closes_msals_connections_and_a_new_token_still_comes(
    emulator: RunningEmulator,
) -> None:
    tokens = provider(emulator)
    tokens.get_token()
    [session] = tokens._sessions
    pool = session.get_adapter(emulator.url).poolmanager

    tokens.close()

    assert not pool.pools  # the keep-alive connection to the authority is gone
    assert tokens._sessions == []
    assert tokens.get_token()  # closing is not the end of the provider
