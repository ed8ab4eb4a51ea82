"""Sign in with Microsoft: Entra ID's OpenID Connect authorization-code flow with
PKCE, through msal (``initiate_auth_code_flow`` / ``acquire_token_by_auth_code_flow``).

``EntraSignIn.start`` makes the flow (state, nonce and PKCE verifier, kept by the
caller in the person's session) and the URL to send the browser to; ``finish``
redeems the code Entra ID sent back and returns who signed in. msal checks the
state, the nonce, the audience and the expiry; here the id_token's signature is
checked too, against the keys the tenant's OpenID metadata publishes (``jwks_uri``),
with the issuer it names, and the tenant must be the bot's own: a person of another
tenant is refused.

The authority and CA bundle come from settings (the emulator plays Entra ID on the
embedded default, ``callbot/simulator/signin.py``). Nothing here imports Django.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from callbot.graph.tokens import build_http_session


@dataclass(frozen=True)
class SignedInUser:
    """Who Entra ID says signed in, from a verified id_token."""

    object_id: str
    tenant_id: str
    name: str
    username: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]


class SignInError(Exception):
    """The sign-in did not succeed; ``code`` is short and stable, for the audit."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EntraSignIn:
    """One app registration's user sign-in. Thread-safe; msal's app and the
    tenant's signing keys are fetched once per process and kept."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        authority: str,
        tenant_id: str,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.client_id = client_id
        self.tenant_id = tenant_id
        self._secret = client_secret
        self._authority = authority.rstrip("/")
        self._session = build_http_session(ca_bundle, timeout)
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._keys: dict[str, Any] = {}
        self._issuer = ""

    def start(self, redirect_uri: str) -> dict[str, Any]:
        """The flow to keep in the session; ``flow["auth_uri"]`` is where to go."""
        try:
            with warnings.catch_warnings():
                # msal recommends form_post; the answer comes back as a query here
                # (a plain GET, no CSRF exemption), which PKCE, the one-time code
                # and the state check keep safe.
                warnings.simplefilter("ignore", UserWarning)
                flow: dict[str, Any] = self._msal().initiate_auth_code_flow(
                    scopes=[], redirect_uri=redirect_uri, response_mode="query"
                )
        except (OSError, ValueError) as exc:
            raise SignInError("unreachable", f"Entra ID is unreachable: {exc}") from exc
        return flow

    def finish(self, flow: dict[str, Any], params: dict[str, str]) -> SignedInUser:
        """Redeem the answer Entra ID sent to the redirect URI (its query string)."""
        if "error" in params:
            raise SignInError(
                params["error"][:64], params.get("error_description", "")[:500]
            )
        try:
            result = self._msal().acquire_token_by_auth_code_flow(flow, params)
        except ValueError as exc:  # state mismatch, a flow used twice
            raise SignInError("state_mismatch", str(exc)) from exc
        except OSError as exc:
            raise SignInError("unreachable", f"Entra ID is unreachable: {exc}") from exc
        if "error" in result:
            raise SignInError(
                str(result["error"])[:64], str(result.get("error_description", ""))
            )
        claims = self._verified(str(result.get("id_token", "")))
        if claims.get("tid") != self.tenant_id:
            raise SignInError(
                "wrong_tenant", "Only people of the bot's own tenant may sign in."
            )
        return SignedInUser(
            object_id=str(claims.get("oid") or claims["sub"]),
            tenant_id=str(claims["tid"]),
            name=str(claims.get("name", "")),
            username=str(claims.get("preferred_username") or claims.get("email") or ""),
            roles=tuple(str(r) for r in claims.get("roles", ())),
            groups=tuple(str(g) for g in claims.get("groups", ())),
        )

    # --- inside -------------------------------------------------------------------

    def _msal(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                host = (urlsplit(self._authority).hostname or "").lower()
                microsoft = host in WELL_KNOWN_AUTHORITY_HOSTS
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._secret,
                    authority=self._authority,
                    validate_authority=microsoft,
                    instance_discovery=None if microsoft else False,
                    http_client=self._session,
                )
            return self._app

    def _verified(self, id_token: str) -> dict[str, Any]:
        """The id_token's claims once its signature, audience and issuer check."""
        try:
            kid = jwt.get_unverified_header(id_token).get("kid", "")
            key = self._key(kid)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self._issuer,
                leeway=120,
            )
        except (jwt.PyJWTError, OSError, ValueError, KeyError) as exc:
            raise SignInError("invalid_id_token", str(exc)) from exc
        return claims

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys:
                metadata = self._session.get(
                    f"{self._authority}/v2.0/.well-known/openid-configuration"
                )
                metadata.raise_for_status()
                document = metadata.json()
                self._issuer = document["issuer"]
                keys = self._session.get(document["jwks_uri"])
                keys.raise_for_status()
                jwks = jwt.PyJWKSet.from_dict(keys.json())
                self._keys = {k.key_id: k.key for k in jwks.keys if k.key_id}
            return self._keys[kid]
