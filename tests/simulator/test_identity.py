"""Identity: msal against the emulator's authority, token errors, 401s, keys, TLS files."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import msal
import requests

from callbot.simulator.tls import ensure_certificates
from tests.support.emulator import RunningEmulator


def msal_app(
    emulator: RunningEmulator, secret: str | None = None
) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify otherwise
    session.verify = str(emulator.ca_path)
    bot = emulator.config.bot
    return msal.ConfidentialClientApplication(
        bot.client_id,
        client_credential=secret or bot.client_secret,
        authority=emulator.authority,
        validate_authority=False,
        instance_discovery=False,
        http_client=session,
    )


def test_msal_acquires_a_graph_token_with_the_apps_roles(
    emulator: RunningEmulator,
) -> None:
    result = msal_app(emulator).acquire_token_for_client(
        scopes=["https://graph.microsoft.com/.default"]
    )

    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == emulator.config.bot.tenant_id
    assert claims["appid"] == emulator.config.bot.client_id
    assert "Calls.InitiateGroupCall.All" in claims["roles"]
    assert claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(result["access_token"])["alg"] == "RS256"


def test_msal_reports_a_wrong_secret_as_invalid_client(
    emulator: RunningEmulator,
) -> None:
    result = msal_app(emulator, secret="wrong").acquire_token_for_client(
        scopes=["https://graph.microsoft.com/.default"]
    )

    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]


def test_token_endpoint_refuses_bad_requests_in_entra_shape(
    emulator: RunningEmulator,
) -> None:
    bot = emulator.config.bot
    http = emulator.http()
    form = {
        "grant_type": "client_credentials",
        "client_id": bot.client_id,
        "client_secret": "nope",
        "scope": "https://graph.microsoft.com/.default",
    }

    wrong_secret = http.post(f"/{bot.tenant_id}/oauth2/v2.0/token", data=form)
    wrong_grant = http.post(
        f"/{bot.tenant_id}/oauth2/v2.0/token", data={**form, "grant_type": "password"}
    )
    wrong_scope = http.post(
        f"/{bot.tenant_id}/oauth2/v2.0/token",
        data={**form, "client_secret": bot.client_secret, "scope": "openid"},
    )
    wrong_tenant = http.get(
        "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration"
    )

    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert wrong_scope.json()["error"] == "invalid_scope"
    assert wrong_tenant.status_code == 400


def test_graph_refuses_requests_without_a_valid_token(
    emulator: RunningEmulator,
) -> None:
    http = emulator.http()

    missing = http.get(
        "/v1.0/communications/calls/abc", headers={"client-request-id": "c-1"}
    )
    forged = http.get(
        "/v1.0/communications/calls/abc",
        headers={"Authorization": "Bearer not.a.token"},
    )

    assert missing.status_code == 401
    error = missing.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["innerError"]["client-request-id"] == "c-1"
    assert missing.headers["client-request-id"] == "c-1"
    assert forged.status_code == 401


def test_unknown_graph_path_answers_in_graph_error_shape(
    emulator: RunningEmulator, graph: httpx.Client
) -> None:
    response = graph.get("/communications/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NotFound"


def test_notification_metadata_points_at_the_keys(emulator: RunningEmulator) -> None:
    document = emulator.http().get("/v1/.well-known/OpenIdConfiguration").json()
    keys = emulator.http().get("/v1/keys").json()["keys"]

    assert document["issuer"] == "https://api.botframework.com"
    assert document["jwks_uri"] == f"{emulator.url}/v1/keys"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert keys[0]["kid"]
    assert keys[0]["kty"] == "RSA"


def test_certificates_reuse_the_ca_and_regenerate_a_missing_server_cert(
    tmp_path: Path,
) -> None:
    first = ensure_certificates(tmp_path)
    ca = first.ca_cert.read_bytes()
    first.server_cert.unlink()

    second = ensure_certificates(tmp_path)

    assert second.ca_cert.read_bytes() == ca
    assert second.server_cert.exists()
    assert oct(second.server_key.stat().st_mode & 0o777) == "0o600"


def test_token_lifetime_is_configurable_and_reset_restores_it(
    emulator: RunningEmulator,
) -> None:
    emulator.control("PATCH", "/config", {"tokenLifetime": 120})
    short = msal_app(emulator).acquire_token_for_client(
        scopes=["https://graph.microsoft.com/.default"]
    )
    emulator.reset()

    claims = jwt.decode(short["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    assert short["expires_in"] == 119
    assert emulator.control("GET", "/config")["tokenLifetime"] == 3600
