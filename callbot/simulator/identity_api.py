"""HTTP routes of the identity side: Entra ID metadata + token, Bot Framework keys.

``GET /{tenant}/v2.0/.well-known/openid-configuration`` gives msal what its authority
discovery reads (``authorization_endpoint``, ``token_endpoint``, ``issuer``...; checked
against msal 1.39's ``authority.py``). ``POST /{tenant}/oauth2/v2.0/token`` serves the
client-credentials grant with Entra ID's error shape. ``/v1/.well-known/OpenIdConfiguration``
and ``/v1/keys`` are the calling platform's metadata and JWKS for notification tokens.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callbot.simulator import signin
from callbot.simulator.emulator import emulator_of
from callbot.simulator.identity import (
    GRAPH_AUDIENCE,
    NOTIFICATION_ISSUER,
)


def origin(request: Request) -> str:
    """The origin to write into metadata: configured, else this request's own."""
    configured = emulator_of(request).config.public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def aad_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    """An Entra ID token-endpoint error body."""
    trace = str(uuid.uuid4())
    return JSONResponse(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace}",
            "error_codes": [code],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
        status_code=status,
    )


async def openid_configuration(request: Request) -> Response:
    emulator = emulator_of(request)
    tenant = request.path_params["tenant"]
    if tenant != emulator.config.bot.tenant_id:
        return aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
    base = f"{origin(request)}/{tenant}"
    document: dict[str, Any] = {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": [
            "code",
            "id_token",
            "code id_token",
            "id_token token",
        ],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{origin(request)}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "tid",
            "roles",
            "appid",
        ],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    }
    return JSONResponse(document)


async def aad_keys(request: Request) -> Response:
    emulator = emulator_of(request)
    return JSONResponse({"keys": [emulator.identity.graph_key.jwk()]})


async def token(request: Request) -> Response:
    """Client-credentials grant: 200 with a Graph token, or Entra ID's error."""
    emulator = emulator_of(request)
    bot = emulator.config.bot
    if request.path_params["tenant"] != bot.tenant_id:
        return aad_error(
            400,
            "invalid_request",
            90002,
            f"Tenant '{request.path_params['tenant']}' not found.",
        )
    # Parsed by hand: Starlette's form parser needs python-multipart, which the
    # emulator does not otherwise need.
    fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    basic = request.headers.get("authorization", "")
    if basic.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        except ValueError:
            user, password = "", ""
        fields.setdefault("client_id", user)
        fields.setdefault("client_secret", password)
    grant = fields.get("grant_type", "")
    if grant not in {"client_credentials", "authorization_code"}:
        return aad_error(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )
    if fields.get("client_id") != bot.client_id:
        return aad_error(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{fields.get('client_id', '')}' was not found in the directory.",
        )
    if not fields.get("client_secret"):
        return aad_error(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        )
    if fields.get("client_secret") != bot.client_secret:
        return aad_error(
            401, "invalid_client", 7000215, "Invalid client secret provided."
        )
    if grant == "authorization_code":
        # A user signing in (signin.py): the code, redirect URI and PKCE verifier.
        issuer = f"{origin(request)}/{bot.tenant_id}/v2.0"
        return signin.redeem_code(emulator, fields, issuer, aad_error)
    scope = fields.get("scope", "")
    if scope.strip() not in (
        f"{GRAPH_AUDIENCE}/.default",
        "00000003-0000-0000-c000-000000000000/.default",
    ):
        return aad_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        )
    emulator.tokens_issued += 1
    lifetime = max(int(emulator.config.token_lifetime), 2)
    return JSONResponse(
        {
            "token_type": "Bearer",
            "expires_in": lifetime - 1,
            "ext_expires_in": lifetime - 1,
            "access_token": emulator.identity.mint_graph_token(lifetime),
        },
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


async def notification_metadata(request: Request) -> Response:
    """The calling platform's OpenID document (contract §8)."""
    return JSONResponse(
        {
            "issuer": NOTIFICATION_ISSUER,
            "authorization_endpoint": f"{origin(request)}/v1/authorize",
            "jwks_uri": f"{origin(request)}/v1/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }
    )


async def notification_keys(request: Request) -> Response:
    emulator = emulator_of(request)
    return JSONResponse({"keys": [emulator.identity.notification_key.jwk()]})


routes = [
    Route(
        "/v1/.well-known/OpenIdConfiguration", notification_metadata, methods=["GET"]
    ),
    Route(
        "/v1/.well-known/openidconfiguration", notification_metadata, methods=["GET"]
    ),
    Route("/v1/keys", notification_keys, methods=["GET"]),
    Route(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        openid_configuration,
        methods=["GET"],
    ),
    Route("/{tenant}/discovery/v2.0/keys", aad_keys, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/authorize", signin.authorize, methods=["GET", "POST"]),
]
