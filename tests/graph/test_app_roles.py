"""Reading the app's grant from its own access token (signature not checked)."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import pytest

from callbot.graph.app_roles import read_grant
from callbot.graph.errors import GraphAuthError

# A key Callbot does not know: only Graph checks the signature.
KEY = "a-signing-key-callbot-never-sees-0123456789"
CLAIMS = {
    "aud": "https://graph.microsoft.com",
    "tid": "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a",
    "appid": "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10",
    "roles": ["Calls.Initiate.All", "Calls.AccessMedia.All"],
    "exp": 1_900_000_000,
}


def test_the_roles_claim_and_the_apps_ids_are_read() -> None:
    token = jwt.encode(CLAIMS, KEY, algorithm="HS256")

    grant = read_grant(token)

    assert grant.roles == {"Calls.Initiate.All", "Calls.AccessMedia.All"}
    assert (grant.app_id, grant.tenant_id, grant.audience) == (
        CLAIMS["appid"],
        CLAIMS["tid"],
        "https://graph.microsoft.com",
    )
    assert grant.expires_at == datetime.fromtimestamp(1_900_000_000, UTC)


def test_a_token_without_roles_grants_nothing() -> None:
    token = jwt.encode({"tid": "t", "azp": "app"}, KEY, algorithm="HS256")

    grant = read_grant(token)

    assert (grant.roles, grant.app_id, grant.expires_at) == (frozenset(), "app", None)


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("opaque-token", "not a readable JWT"),
        (jwt.encode({"roles": "Calls.Initiate.All"}, KEY, algorithm="HS256"), "list"),
    ],
)
def test_an_unreadable_token_is_a_clear_error(token: str, why: str) -> None:
    with pytest.raises(GraphAuthError) as error:
        read_grant(token)

    assert error.value.code == "unreadable_token"
    assert why in error.value.message
