"""Entra ID's user sign-in, played locally: the OpenID Connect authorization-code
flow with PKCE that ``msal`` drives for "Sign in with Microsoft".

``GET /{tenant}/oauth2/v2.0/authorize`` checks the request as Entra ID does (the
registered client, ``response_type=code``, an S256 ``code_challenge``) and shows a
small page listing the demo people of the tenant; choosing one (``POST`` to the same
URL) redirects to ``redirect_uri`` with a one-time code and the ``state``. The token
endpoint (``identity_api.token``) exchanges the code, checking the client secret,
the redirect URI and the PKCE verifier, for an id_token signed with the key the
tenant's metadata publishes (``jwks_uri``), carrying ``oid``, ``tid``, ``name``,
``preferred_username``, the ``nonce``, and the person's app ``roles`` and ``groups``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

CODE_LIFETIME = 300
ID_TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class DemoPerson:
    """A user of the emulated tenant, with the app roles and groups Entra ID would
    put in their token."""

    oid: str
    name: str
    username: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


# The group object id below stands for "Callbot auditors" (a group claim, mapped
# to a role by ENTRA_ROLE_MAP in Callbot, like an app role).
AUDITORS_GROUP = "5b7c2d1e-9a4f-4c3b-8e6d-1f0a2b3c4d5e"
PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson(
        "a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a5b",
        "Ana Lopez",
        "ana.lopez@contoso.example",
        roles=("Callbot.Admin",),
    ),
    DemoPerson(
        "a1b2c3d4-0002-4e5f-8a9b-0c1d2e3f4a5b",
        "Lee Chen",
        "lee.chen@contoso.example",
        roles=("Callbot.Supervisor",),
    ),
    DemoPerson(
        "a1b2c3d4-0003-4e5f-8a9b-0c1d2e3f4a5b",
        "Sam Okafor",
        "sam.okafor@contoso.example",
        groups=(AUDITORS_GROUP,),
    ),
    DemoPerson(
        "a1b2c3d4-0004-4e5f-8a9b-0c1d2e3f4a5b",
        "Kim Park",
        "kim.park@contoso.example",
    ),
)
_BY_OID = {p.oid: p for p in PEOPLE}

# The parameters the authorize request carries through the sign-in page.
_CARRIED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
)


@dataclass
class PendingCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    scope: str
    person: DemoPerson
    expires: float


class SignIns:
    """Issued authorization codes, each usable once."""

    def __init__(self) -> None:
        self._codes: dict[str, PendingCode] = {}

    def issue(self, pending: PendingCode) -> str:
        now = time.time()
        self._codes = {c: p for c, p in self._codes.items() if p.expires > now}
        code = secrets.token_urlsafe(32)
        self._codes[code] = pending
        return code

    def redeem(self, code: str) -> PendingCode | None:
        pending = self._codes.pop(code, None)
        if pending is None or pending.expires < time.time():
            return None
        return pending


def _error_page(status: int, code: int, text: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>Sign in</title><h1>Sorry, but we're having trouble "
        f"signing you in.</h1><p>AADSTS{code}: {html.escape(text)}</p>",
        status_code=status,
    )


def _check_authorize(
    params: dict[str, str], tenant: str, bot: Any
) -> HTMLResponse | None:
    if tenant != bot.tenant_id:
        return _error_page(400, 90002, f"Tenant '{tenant}' not found.")
    if params.get("client_id") != bot.client_id:
        return _error_page(
            400,
            700016,
            f"Application with identifier '{params.get('client_id', '')}' was not "
            "found in the directory.",
        )
    if not params.get("redirect_uri", "").startswith(("http://", "https://")):
        return _error_page(400, 50011, "The redirect URI is missing or invalid.")
    if params.get("response_type") != "code":
        return _error_page(400, 700054, "response_type must be 'code'.")
    if not params.get("code_challenge") or params.get("code_challenge_method") != (
        "S256"
    ):
        return _error_page(
            400, 9002325, "Proof Key for Code Exchange (S256) is required."
        )
    if "openid" not in params.get("scope", "").split():
        return _error_page(400, 900144, "The scope must include 'openid'.")
    return None


def _page(action: str, params: dict[str, str]) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(params[k])}">'
        for k in _CARRIED
        if k in params
    )
    choices = "".join(
        f'<li><form method="post" action="{html.escape(action)}">{hidden}'
        f'<input type="hidden" name="person" value="{p.oid}">'
        f'<button type="submit" data-person="{html.escape(p.username)}">'
        f"{html.escape(p.name)} <small>{html.escape(p.username)}</small>"
        "</button></form></li>"
        for p in PEOPLE
    )
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>Sign in to your account</title></head><body>"
        "<h1>Pick an account</h1><p>The emulator's tenant: choose who signs in.</p>"
        f"<ul>{choices}</ul></body></html>",
        headers={"Cache-Control": "no-store"},
    )


async def authorize(request: Request) -> Response:
    """The sign-in page (GET) and the choice of a person on it (POST)."""
    emulator = request.app.state.emulator
    bot = emulator.config.bot
    tenant = request.path_params["tenant"]
    if request.method == "GET":
        params = dict(request.query_params)
    else:
        params = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    refused = _check_authorize(params, tenant, bot)
    if refused is not None:
        return refused
    if request.method == "GET":
        return _page(str(request.url.path), params)
    person = _BY_OID.get(params.get("person", ""))
    if person is None:
        return _page(str(request.url.path), params)
    code = emulator.signins.issue(
        PendingCode(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            code_challenge=params["code_challenge"],
            nonce=params.get("nonce", ""),
            scope=params.get("scope", ""),
            person=person,
            expires=time.time() + CODE_LIFETIME,
        )
    )
    answer = {"code": code, "session_state": str(uuid.uuid4())}
    if "state" in params:
        answer["state"] = params["state"]
    separator = "&" if "?" in params["redirect_uri"] else "?"
    return RedirectResponse(
        params["redirect_uri"] + separator + urlencode(answer), status_code=302
    )


def _pkce_matches(verifier: str, challenge: str) -> bool:
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return secrets.compare_digest(computed, challenge)


def redeem_code(
    emulator: Any,
    fields: dict[str, str],
    issuer: str,
    aad_error: Callable[[int, str, int, str], Response],
) -> Response:
    """The token endpoint's ``authorization_code`` grant (client already checked)."""
    pending = emulator.signins.redeem(fields.get("code", ""))
    if pending is None:
        return aad_error(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired or was "
            "already used.",
        )
    if fields.get("redirect_uri") != pending.redirect_uri:
        return aad_error(
            400,
            "invalid_grant",
            50148,
            "The redirect URI does not match the one of the authorization request.",
        )
    if not _pkce_matches(fields.get("code_verifier", ""), pending.code_challenge):
        return aad_error(
            400, "invalid_grant", 501481, "The Code_Verifier does not match."
        )
    bot = emulator.config.bot
    person = pending.person
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": bot.client_id,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + ID_TOKEN_LIFETIME,
        "tid": bot.tenant_id,
        "oid": person.oid,
        "sub": hashlib.sha256(f"{person.oid}:{bot.client_id}".encode()).hexdigest(),
        "name": person.name,
        "preferred_username": person.username,
        "email": person.username,
        "ver": "2.0",
        "uti": uuid.uuid4().hex,
    }
    if pending.nonce:
        claims["nonce"] = pending.nonce
    if person.roles:
        claims["roles"] = list(person.roles)
    if person.groups:
        claims["groups"] = list(person.groups)
    id_token = emulator.identity.sign_id_token(claims)
    client_info = base64.urlsafe_b64encode(
        json.dumps({"uid": person.oid, "utid": bot.tenant_id}).encode()
    ).rstrip(b"=")
    return JSONResponse(
        {
            "token_type": "Bearer",
            "scope": pending.scope,
            "expires_in": ID_TOKEN_LIFETIME,
            "ext_expires_in": ID_TOKEN_LIFETIME,
            "id_token": id_token,
            "client_info": client_info.decode(),
        },
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )
