"""The emulator plays Entra ID's user sign-in, and Callbot's msal client completes
it: authorize page, code, PKCE-checked token exchange, a signed id_token."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from callbot.graph.user_signin import EntraSignIn, SignedInUser, SignInError
from tests.support.emulator import RunningEmulator

REDIRECT = "http://127.0.0.1:9/accounts/microsoft/callback"


def client_for(emulator: RunningEmulator, tenant: str | None = None) -> EntraSignIn:
    bot = emulator.config.bot
    return EntraSignIn(
        client_id=bot.client_id,
        client_secret=bot.client_secret,
        authority=emulator.authority,
        tenant_id=tenant or bot.tenant_id,
        ca_bundle=str(emulator.ca_path),
    )


def choose(emulator: RunningEmulator, auth_uri: str, username: str) -> dict[str, str]:
    """Open the sign-in page, pick ``username``; the query sent to the redirect URI."""
    http = emulator.http()
    page = http.get(auth_uri)
    assert page.status_code == 200
    forms = re.findall(
        r"<form method=\"post\" action=\"([^\"]+)\">(.*?)</form>", page.text
    )
    for action, body in forms:
        if f'data-person="{username}"' in body:
            fields = {
                unescape(n): unescape(v)
                for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', body)
            }
            answer = http.post(action, data=fields)
            assert answer.status_code == 302, answer.text
            location = answer.headers["location"]
            assert location.startswith(REDIRECT)
            return dict(parse_qsl(urlsplit(location).query))
    raise AssertionError(f"{username} is not on the sign-in page")


def test_a_demo_person_signs_in_with_their_app_roles(emulator: RunningEmulator) -> None:
    signin = client_for(emulator)
    flow = signin.start(REDIRECT)
    query = dict(parse_qsl(urlsplit(flow["auth_uri"]).query))
    assert query["code_challenge_method"] == "S256"
    assert query["response_type"] == "code"

    person = signin.finish(
        flow, choose(emulator, flow["auth_uri"], "ana.lopez@contoso.example")
    )

    assert person == SignedInUser(
        object_id="a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a5b",
        tenant_id=emulator.config.bot.tenant_id,
        name="Ana Lopez",
        username="ana.lopez@contoso.example",
        roles=("Callbot.Admin",),
        groups=(),
    )


def test_a_code_is_redeemed_once_and_only_with_its_verifier(
    emulator: RunningEmulator,
) -> None:
    signin = client_for(emulator)
    flow = signin.start(REDIRECT)
    answer = choose(emulator, flow["auth_uri"], "lee.chen@contoso.example")
    bot = emulator.config.bot
    token_url = f"{emulator.authority}/oauth2/v2.0/token"
    fields = {
        "grant_type": "authorization_code",
        "client_id": bot.client_id,
        "client_secret": bot.client_secret,
        "code": answer["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": "not-the-verifier",
    }
    wrong = emulator.http().post(token_url, data=fields)
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    # The refused attempt used the code up, as Entra ID does.
    with pytest.raises(SignInError) as refused:
        signin.finish(flow, answer)
    assert refused.value.code == "invalid_grant"


def test_a_person_of_another_tenant_is_refused(emulator: RunningEmulator) -> None:
    signin = client_for(emulator, tenant="00000000-0000-0000-0000-000000000000")
    flow = signin.start(REDIRECT)
    answer = choose(emulator, flow["auth_uri"], "kim.park@contoso.example")
    with pytest.raises(SignInError) as refused:
        signin.finish(flow, answer)
    assert refused.value.code == "wrong_tenant"


def test_the_authorize_page_refuses_an_unknown_client_and_no_pkce(
    emulator: RunningEmulator,
) -> None:
    url = f"{emulator.authority}/oauth2/v2.0/authorize"
    base = {
        "client_id": emulator.config.bot.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid profile",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    http: httpx.Client = emulator.http()
    assert http.get(url, params=base).status_code == 200
    assert "AADSTS700016" in http.get(url, params={**base, "client_id": "nope"}).text
    no_pkce = {k: v for k, v in base.items() if not k.startswith("code_")}
    assert "AADSTS9002325" in http.get(url, params=no_pkce).text
