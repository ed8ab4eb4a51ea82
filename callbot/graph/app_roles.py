"""What the app's own access token says it may do: its application permissions.

Entra ID writes the application permissions an admin granted the app into the
``roles`` claim of every client-credentials token (contract §1.2); ``tid`` is the
tenant, ``appid``/``azp`` the app. ``read_grant`` decodes those claims **without
verifying the signature**: the token came straight from the token endpoint over
TLS, Graph verifies it on every request, and the result is only shown to an admin
(the permissions panel), never used to decide anything. Tokens are never logged.

Nothing here imports Django; only ``callbot.graph`` imports the JWT library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from callbot.graph.errors import GraphAuthError


@dataclass(frozen=True)
class AppGrant:
    """The claims of one access token that describe the app's rights."""

    roles: frozenset[str]
    app_id: str
    tenant_id: str
    audience: str
    expires_at: datetime | None


def read_grant(token: str) -> AppGrant:
    """The app's grant as the access token states it (signature not checked).

    Raises ``GraphAuthError`` (code ``unreadable_token``) for a token that is not a
    JWT with a JSON claims set, or whose ``roles`` is not a list of strings.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            options={
                "verify_signature": False,
                "verify_exp": False,
                "verify_aud": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise GraphAuthError(
            0, "unreadable_token", f"the access token is not a readable JWT ({exc})"
        ) from None
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise GraphAuthError(
            0, "unreadable_token", "the access token's roles claim is not a list"
        )
    expires = claims.get("exp")
    return AppGrant(
        roles=frozenset(roles),
        app_id=str(claims.get("appid") or claims.get("azp") or ""),
        tenant_id=str(claims.get("tid") or ""),
        audience=str(claims.get("aud") or ""),
        expires_at=(
            datetime.fromtimestamp(expires, UTC)
            if isinstance(expires, int | float)
            else None
        ),
    )
