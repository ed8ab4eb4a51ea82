"""Bearer-token validation on Graph notification POSTs (contract §8).

The keys come from a real HTTP server (``jwks_server``) so fetching, caching and the
refetch rate limit are exercised over a socket; only the cache clock is faked where
a test needs to move past the TTL or the refetch interval.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from callbot.graph.notification_auth import (
    NotificationAuthConfig,
    NotificationAuthenticator,
    NotificationAuthError,
    NotificationClaims,
    SigningKeysUnavailableError,
)
from tests.support.jwt import (
    GRAPH_ISSUER,
    KEYS_PATH,
    OMIT,
    OPENID_PATH,
    JwksServer,
    TestTokenIssuer,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authenticator(
    notification_auth_config: NotificationAuthConfig, clock: FakeClock
) -> NotificationAuthenticator:
    return NotificationAuthenticator(notification_auth_config, clock=clock)


def refused(authenticator: NotificationAuthenticator, header: str | None) -> str:
    """Validate, expect a refusal, return its reason."""
    with pytest.raises(NotificationAuthError) as excinfo:
        authenticator.validate(header)
    return excinfo.value.reason


# -- accepted tokens -------------------------------------------------------------


def test_valid_token_is_accepted_with_its_claims(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    now = int(time.time())
    token = token_issuer.mint(iat=now, nbf=now, exp=now + 3900)

    claims = authenticator.validate(f"Bearer {token}")

    assert claims == NotificationClaims(
        tenant_id=token_issuer.tenant_id,
        audience=token_issuer.audience,
        issuer="https://api.botframework.com",
        issued_at=datetime.fromtimestamp(now, tz=UTC),
        expires_at=datetime.fromtimestamp(now + 3900, tz=UTC),
        claims={},
    )
    assert claims.claims["tid"] == token_issuer.tenant_id
    assert jwks_server.openid_fetches == 1
    assert jwks_server.jwks_fetches == 1


def test_cached_keys_serve_later_tokens_without_fetching(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    for _ in range(5):
        authenticator.validate(token_issuer.bearer())

    assert jwks_server.openid_fetches == 1
    assert jwks_server.jwks_fetches == 1


def test_bearer_scheme_is_case_insensitive(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    claims = authenticator.validate(f"  bearer   {token_issuer.mint()}  ")

    assert claims.tenant_id == token_issuer.tenant_id


def test_second_accepted_issuer_is_accepted(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    claims = authenticator.validate(token_issuer.bearer(iss=GRAPH_ISSUER))

    assert claims.issuer == GRAPH_ISSUER


def test_token_within_leeway_is_accepted(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    now = int(time.time())

    # Expired 4 minutes ago; not valid for another 4 minutes: both inside 5 min skew.
    authenticator.validate(
        token_issuer.bearer(iat=now - 3900, nbf=now - 3900, exp=now - 240)
    )
    authenticator.validate(
        token_issuer.bearer(iat=now + 240, nbf=now + 240, exp=now + 4000)
    )


def test_token_without_nbf_is_accepted_as_the_samples_do(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    claims = authenticator.validate(token_issuer.bearer(nbf=OMIT))

    assert "nbf" not in claims.claims


def test_audience_list_containing_ours_is_accepted(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    claims = authenticator.validate(
        token_issuer.bearer(aud=["someone-else", token_issuer.audience])
    )

    assert claims.audience == token_issuer.audience


# -- refused tokens ----------------------------------------------------------------


def test_forged_signature_with_the_right_kid_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    forged = token_issuer.mint_with(key=token_issuer.new_key(), kid=token_issuer.kid)

    assert refused(authenticator, f"Bearer {forged}") == "bad signature"


def test_tampered_claims_are_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    header, _, signature = token_issuer.mint().split(".")
    payload = _b64(json.dumps(token_issuer.claims(tid="another-tenant")).encode())

    assert refused(authenticator, f"Bearer {header}.{payload}.{signature}") == (
        "bad signature"
    )


def test_expired_token_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    now = int(time.time())
    header = token_issuer.bearer(iat=now - 7200, nbf=now - 7200, exp=now - 301)

    assert refused(authenticator, header).startswith("token expired")


def test_token_not_yet_valid_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    now = int(time.time())

    reason = refused(authenticator, token_issuer.bearer(nbf=now + 600))

    assert reason.startswith("token not yet valid")
    assert "nbf" in reason


def test_token_issued_in_the_future_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    now = int(time.time())

    reason = refused(authenticator, token_issuer.bearer(iat=now + 600, nbf=OMIT))

    assert reason.startswith("token not yet valid")


def test_wrong_audience_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    reason = refused(authenticator, token_issuer.bearer(aud="0b0e2b0e-other-app"))

    assert reason == f"wrong audience (expected {token_issuer.audience})"


def test_wrong_issuer_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    reason = refused(authenticator, token_issuer.bearer(iss="https://sts.example.com"))

    assert reason.startswith("wrong issuer")
    assert "https://api.botframework.com" in reason


@pytest.mark.parametrize("claim", ["tid", "exp", "iat", "iss", "aud"])
def test_token_missing_a_required_claim_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer, claim: str
) -> None:
    reason = refused(authenticator, token_issuer.bearer(**{claim: OMIT}))

    assert reason.startswith(f"token has no {claim}")


def test_empty_tid_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    assert refused(authenticator, token_issuer.bearer(tid="")).startswith(
        "token has no tid"
    )


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_refused(
    authenticator: NotificationAuthenticator, header: str | None
) -> None:
    assert refused(authenticator, header) == "missing Authorization header"


def test_non_bearer_scheme_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    assert refused(authenticator, "Basic dXNlcjpwYXNz") == (
        "Authorization scheme is not Bearer"
    )


def test_token_sent_without_a_scheme_is_refused_without_echoing_it(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint()

    reason = refused(authenticator, token)

    assert reason == "Authorization scheme is not Bearer"


def test_bearer_without_a_token_is_refused(
    authenticator: NotificationAuthenticator,
) -> None:
    assert refused(authenticator, "Bearer ") == "empty bearer token"


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30", "ey.ey.ey.ey", "!!!.!!!.!!!"],
)
def test_garbage_token_is_refused_as_malformed(
    authenticator: NotificationAuthenticator, jwks_server: JwksServer, token: str
) -> None:
    assert refused(authenticator, f"Bearer {token}").startswith("malformed token")
    # Refused before any key is looked up.
    assert jwks_server.jwks_fetches == 0


def test_alg_none_is_refused(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    token = token_issuer.mint_with(algorithm="none")

    reason = refused(authenticator, f"Bearer {token}")

    assert reason == "token algorithm 'none' is not allowed (only RS256)"
    assert jwks_server.jwks_fetches == 0


def test_hs256_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint_with(
        algorithm="HS256", key="a-shared-secret-of-at-least-32-bytes!"
    )

    assert refused(authenticator, f"Bearer {token}") == (
        "token algorithm 'HS256' is not allowed (only RS256)"
    )


def test_hs256_signed_with_the_public_key_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    # The classic algorithm-confusion forgery: HMAC keyed with the published RSA key.
    public_pem = token_issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "kid": token_issuer.kid}).encode())
    payload = _b64(json.dumps(token_issuer.claims()).encode())
    signature = _b64(
        hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    )

    reason = refused(authenticator, f"Bearer {header}.{payload}.{signature}")

    assert reason.startswith("token algorithm 'HS256' is not allowed")


def test_other_rsa_algorithm_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint_with(algorithm="RS512")

    assert refused(authenticator, f"Bearer {token}").startswith(
        "token algorithm 'RS512' is not allowed"
    )


def test_token_without_kid_is_refused(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.mint_with(kid=OMIT)

    assert refused(authenticator, f"Bearer {token}") == "token header has no kid"


def test_refusal_reasons_never_contain_the_token(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    now = int(time.time())
    tokens = [
        token_issuer.mint(aud="other"),
        token_issuer.mint(iss="https://sts.example.com"),
        token_issuer.mint(exp=now - 3600),
        token_issuer.mint(tid=OMIT),
        token_issuer.mint_with(key=token_issuer.new_key()),
        token_issuer.mint_with(kid="unknown-kid"),
    ]
    for token in tokens:
        for header in (f"Bearer {token}", token):
            reason = refused(authenticator, header)
            assert token not in reason
            assert token.split(".")[2] not in reason


# -- keys: unknown kid, rotation, rate limit -------------------------------------


def test_unknown_kid_refetches_once_then_refuses(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    authenticator.validate(token_issuer.bearer())
    assert jwks_server.jwks_fetches == 1

    forged = token_issuer.mint_with(key=token_issuer.new_key(), kid="forged-kid-1")
    reason = refused(authenticator, f"Bearer {forged}")

    assert reason == "unknown signing key kid 'forged-kid-1', even after a refetch"
    assert jwks_server.openid_fetches == 2
    assert jwks_server.jwks_fetches == 2


def test_second_unknown_kid_within_the_interval_does_not_refetch(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    clock: FakeClock,
) -> None:
    authenticator.validate(token_issuer.bearer())
    refused(authenticator, f"Bearer {token_issuer.mint_with(kid='forged-kid-1')}")
    assert jwks_server.jwks_fetches == 2

    clock.advance(29)
    for n in range(2, 50):
        reason = refused(
            authenticator, f"Bearer {token_issuer.mint_with(kid=f'forged-kid-{n}')}"
        )
        assert reason.endswith("(key refetch rate-limited)")

    assert jwks_server.jwks_fetches == 2
    # The known key still works while refetches are held back.
    authenticator.validate(token_issuer.bearer())


def test_unknown_kid_refetches_again_after_the_interval(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    clock: FakeClock,
) -> None:
    authenticator.validate(token_issuer.bearer())
    refused(authenticator, f"Bearer {token_issuer.mint_with(kid='forged-kid-1')}")

    clock.advance(30)
    refused(authenticator, f"Bearer {token_issuer.mint_with(kid='forged-kid-2')}")

    assert jwks_server.jwks_fetches == 3


def test_unknown_kid_on_a_cold_cache_fetches_only_once(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    reason = refused(authenticator, f"Bearer {token_issuer.mint_with(kid='forged')}")

    assert reason == "unknown signing key kid 'forged'"
    assert jwks_server.jwks_fetches == 1


def test_rotated_key_is_picked_up_on_refetch(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    authenticator.validate(token_issuer.bearer())
    old_token = token_issuer.bearer()

    new_kid = jwks_server.rotate()
    claims = authenticator.validate(token_issuer.bearer())

    assert token_issuer.kid == new_kid
    assert claims.tenant_id == token_issuer.tenant_id
    assert jwks_server.jwks_fetches == 2
    # The old key left the JWKS with the refetch; its tokens now fail.
    assert refused(authenticator, old_token).startswith("unknown signing key kid")


def test_overlapping_rotation_keeps_old_tokens_valid(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    old_token = token_issuer.bearer()
    jwks_server.rotate(keep_old=True)

    authenticator.validate(token_issuer.bearer())
    authenticator.validate(old_token)

    assert jwks_server.jwks_fetches == 1


def test_keys_are_refreshed_after_the_cache_ttl(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    clock: FakeClock,
) -> None:
    authenticator.validate(token_issuer.bearer())
    clock.advance(7199)
    authenticator.validate(token_issuer.bearer())
    assert jwks_server.jwks_fetches == 1

    clock.advance(1)
    authenticator.validate(token_issuer.bearer())

    assert jwks_server.openid_fetches == 2
    assert jwks_server.jwks_fetches == 2


def test_concurrent_first_requests_fetch_the_keys_once(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    headers = [token_issuer.bearer() for _ in range(16)]
    start = threading.Barrier(len(headers))
    results: list[NotificationClaims | BaseException] = []

    def validate(header: str) -> None:
        start.wait()
        try:
            results.append(authenticator.validate(header))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=validate, args=(h,)) for h in headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert all(isinstance(r, NotificationClaims) for r in results), results
    assert len(results) == 16
    assert jwks_server.jwks_fetches == 1


# -- keys: fetch failures ----------------------------------------------------------


def test_server_down_with_cached_keys_still_validates(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    authenticator.validate(token_issuer.bearer())
    jwks_server.stop()

    claims = authenticator.validate(token_issuer.bearer())

    assert claims.tenant_id == token_issuer.tenant_id


def test_server_down_at_ttl_expiry_keeps_stale_keys_and_backs_off(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    authenticator.validate(token_issuer.bearer())
    jwks_server.fail_with(503)
    clock.advance(7200)

    for _ in range(10):
        authenticator.validate(token_issuer.bearer())

    # One failed attempt, then no more until the refetch interval has passed.
    assert jwks_server.openid_fetches == 2
    assert "Cannot refresh notification signing keys" in caplog.text
    assert "HTTP 503" in caplog.text

    jwks_server.fail_with(None)
    clock.advance(30)
    authenticator.validate(token_issuer.bearer())
    assert jwks_server.jwks_fetches == 2


def test_unknown_kid_while_server_fails_says_why(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    authenticator.validate(token_issuer.bearer())
    jwks_server.fail_with(500)

    reason = refused(authenticator, f"Bearer {token_issuer.mint_with(kid='new')}")

    assert reason.startswith("unknown signing key kid 'new' (refetch failed: ")
    assert "HTTP 500" in reason


def test_server_down_with_no_cache_is_a_clear_error(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    jwks_server.stop()

    with pytest.raises(SigningKeysUnavailableError) as excinfo:
        authenticator.validate(token_issuer.bearer())

    reason = excinfo.value.reason
    assert reason.startswith("signing keys unavailable: OpenID document ")
    assert jwks_server.openid_url in reason
    assert "ConnectError" in reason


def test_failed_first_fetch_is_not_retried_within_the_interval(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    clock: FakeClock,
) -> None:
    jwks_server.fail_with(503)
    for _ in range(5):
        with pytest.raises(SigningKeysUnavailableError, match="HTTP 503"):
            authenticator.validate(token_issuer.bearer())
    assert jwks_server.openid_fetches == 1

    jwks_server.fail_with(None)
    clock.advance(30)
    authenticator.validate(token_issuer.bearer())
    assert jwks_server.openid_fetches == 2


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (OPENID_PATH, {"issuer": "x"}, "has no usable jwks_uri"),
        (OPENID_PATH, {"jwks_uri": "/v1/keys"}, "has no usable jwks_uri"),
        (OPENID_PATH, "<html>maintenance</html>", "is not JSON"),
        (OPENID_PATH, ["not", "an", "object"], "is not a JSON object"),
        (KEYS_PATH, {"keys": "nope"}, "has no keys list"),
        (KEYS_PATH, {"keys": []}, "has no usable RS256 signing keys"),
        (
            KEYS_PATH,
            {"keys": [{"kty": "EC", "kid": "ec", "crv": "P-256", "x": "", "y": ""}]},
            "has no usable RS256 signing keys",
        ),
    ],
)
def test_bad_key_documents_make_keys_unavailable(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    path: str,
    body: object,
    message: str,
) -> None:
    jwks_server.respond(path, 200, body)

    with pytest.raises(SigningKeysUnavailableError, match=message):
        authenticator.validate(token_issuer.bearer())


def test_unusable_jwks_entries_are_skipped_and_rsa256_label_is_accepted(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    good = token_issuer.jwks()["keys"][0]
    other = TestTokenIssuer().jwks()["keys"][0]
    jwks_server.respond(
        KEYS_PATH,
        200,
        {
            "keys": [
                "not-a-key",
                {"kty": "RSA", "use": "sig", "n": "AQAB", "e": "AQAB"},  # no kid
                {**other, "kid": "for-encryption", "use": "enc"},
                {**other, "kid": "for-rs512", "alg": "RS512"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "!!"},
                # Microsoft's OpenID document spells RS256 "RSA256".
                {**good, "alg": "RSA256"},
            ]
        },
    )

    claims = authenticator.validate(token_issuer.bearer())

    assert claims.tenant_id == token_issuer.tenant_id
    for kid in ("for-encryption", "for-rs512"):
        forged = token_issuer.mint_with(key=token_issuer.new_key(), kid=kid)
        assert refused(authenticator, f"Bearer {forged}").startswith(
            "unknown signing key kid"
        )


def test_ca_bundle_path_is_honoured_for_https_key_servers(
    notification_auth_config: NotificationAuthConfig,
    token_issuer: TestTokenIssuer,
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    with JwksServer(token_issuer, tls=ca) as server:
        assert server.openid_url.startswith("https://127.0.0.1:")
        trusting = dataclasses.replace(
            notification_auth_config,
            openid_url=server.openid_url,
            ca_bundle=str(ca_file),
        )
        untrusting = dataclasses.replace(trusting, ca_bundle=None)

        claims = NotificationAuthenticator(trusting).validate(token_issuer.bearer())
        with pytest.raises(SigningKeysUnavailableError, match="ConnectError"):
            NotificationAuthenticator(untrusting).validate(token_issuer.bearer())

    assert claims.tenant_id == token_issuer.tenant_id


def test_missing_ca_bundle_file_is_a_clear_error(
    notification_auth_config: NotificationAuthConfig,
    token_issuer: TestTokenIssuer,
    tmp_path: Path,
) -> None:
    config = dataclasses.replace(
        notification_auth_config, ca_bundle=str(tmp_path / "missing.pem")
    )

    with pytest.raises(SigningKeysUnavailableError, match=r"CA bundle .* unusable"):
        NotificationAuthenticator(config).validate(token_issuer.bearer())


def test_config_is_hashable_so_callers_can_cache_authenticators(
    notification_auth_config: NotificationAuthConfig,
) -> None:
    same = dataclasses.replace(notification_auth_config)

    assert {notification_auth_config: 1}[same] == 1


def test_absurd_expiry_is_refused_not_crashed_on(
    authenticator: NotificationAuthenticator, token_issuer: TestTokenIssuer
) -> None:
    reason = refused(authenticator, token_issuer.bearer(exp=10**15))

    assert reason == "token exp claim is out of range"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- tokens accepted before ------------------------------------------------------


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT verified while the test ran."""
    import callbot.graph.notification_auth as module

    seen: list[str] = []
    real = module.jwt.decode

    def decode(token: str, *args: object, **kwargs: object) -> object:
        seen.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(module.jwt, "decode", decode)
    return seen


def test_an_accepted_token_is_not_verified_again(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    decodes: list[str],
) -> None:
    token = token_issuer.mint()

    first = authenticator.validate(f"Bearer {token}")
    again = [authenticator.validate(f"Bearer {token}") for _ in range(3)]

    assert again == [first] * 3
    assert decodes == [token]
    other = token_issuer.mint(tid="another-tenant")
    assert authenticator.validate(f"Bearer {other}").tenant_id == "another-tenant"
    assert decodes == [token, other]


def test_an_accepted_token_is_verified_again_once_expired(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    decodes: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import callbot.graph.notification_auth as module

    now = int(time.time())
    token = token_issuer.mint(iat=now, nbf=now, exp=now + 60)
    authenticator.validate(f"Bearer {token}")
    leeway = authenticator.config.leeway_seconds
    monkeypatch.setattr(module.time, "time", lambda: now + 60 + leeway + 1)

    # Past its expiry it is checked in full (here PyJWT's clock still accepts it).
    authenticator.validate(f"Bearer {token}")

    assert decodes == [token, token]


def test_an_accepted_token_is_verified_again_against_refetched_keys(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
    decodes: list[str],
    clock: FakeClock,
) -> None:
    token = token_issuer.mint()
    authenticator.validate(f"Bearer {token}")

    clock.advance(7200)  # the key set's TTL: fetched again, new key objects
    authenticator.validate(f"Bearer {token}")

    assert jwks_server.jwks_fetches == 2
    assert decodes == [token, token]


def test_an_accepted_token_whose_key_was_withdrawn_is_refused(
    authenticator: NotificationAuthenticator,
    token_issuer: TestTokenIssuer,
    jwks_server: JwksServer,
) -> None:
    old_token = token_issuer.mint()
    authenticator.validate(f"Bearer {old_token}")

    jwks_server.rotate()
    authenticator.validate(token_issuer.bearer())  # unknown kid: refetched

    assert refused(authenticator, f"Bearer {old_token}").startswith(
        "unknown signing key kid"
    )
