"""Authentication of Graph notification POSTs: the bearer JWT (contract §8).

Microsoft's calling platform signs every webhook POST with a Skype/Bot Framework key
and sends it as ``Authorization: Bearer <JWT>``. ``NotificationAuthenticator`` checks
that token: RS256 signature against the key whose ``kid`` the token names, issuer,
audience (our app id), lifetime with clock-skew leeway, and a ``tid`` claim.

Signing keys come from the OpenID document's ``jwks_uri`` and are cached by ``kid``.
An unknown ``kid`` triggers one refetch, rate-limited so a flood of forged kids
cannot turn the webhook into a load generator against Microsoft.

This module owns the JWT library and the key fetching for notifications. It must not
import Django: ``callbot.graph.factory`` builds a ``NotificationAuthConfig`` from
settings and passes it in. Reasons in ``NotificationAuthError`` are safe to log and
never contain the token.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import httpx
import jwt

logger = logging.getLogger(__name__)

ALLOWED_ALGORITHM = "RS256"
# Microsoft's OpenID document for the calling platform advertises "RSA256", a
# misspelling of RS256; a key labelled either way is usable for RS256.
_RS256_KEY_LABELS = frozenset({"RS256", "RSA256"})
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud")
# Accepted tokens remembered (``NotificationAuthenticator.validate``): the
# platform signs many POSTs with one token, and checking it again (RS256, the
# claims, two JSON decodes) cost ~0.5 ms of the webhook's CPU per batch.
VERIFIED_TOKENS_KEPT = 256


class NotificationAuthError(Exception):
    """The notification's bearer token was refused.

    ``reason`` says why in words safe to log and to return in a 401 body; it never
    contains the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeysUnavailableError(NotificationAuthError):
    """No signing keys could be loaded, so no token can be checked.

    The fault is on our side or Microsoft's, not the sender's: a webhook may answer
    503 instead of 401 so that the delivery is retried.
    """


class _KeyFetchError(Exception):
    """Fetching the OpenID document or the JWKS failed; the message says how."""


@dataclass(frozen=True)
class NotificationAuthConfig:
    """Where the keys live and what a valid token must say.

    Frozen and hashable, so a caller may cache one authenticator per configuration.
    ``ca_bundle`` is a PEM file of trusted CAs (the local emulator's own CA); ``None``
    or ``""`` means the system trust store.
    """

    openid_url: str
    audience: str
    issuers: tuple[str, ...]
    leeway_seconds: int = 300
    ca_bundle: str | None = None
    timeout_seconds: float = 5.0
    refetch_min_interval_seconds: float = 30.0
    cache_ttl_seconds: float = 7200.0


@dataclass(frozen=True)
class NotificationClaims:
    """The checked claims of an accepted token.

    ``tenant_id`` is the ``tid`` claim, the tenant the notification is about.
    ``claims`` is the full, read-only claim set.
    """

    tenant_id: str
    audience: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    claims: Mapping[str, Any] = field(compare=False, repr=False)


def _shown(value: object, limit: int = 64) -> str:
    """A short ``repr`` of an attacker-controlled value, fit for a log line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _timestamp(payload: Mapping[str, Any], claim: str) -> datetime:
    # PyJWT has already checked the claim converts to an integer; a signed but
    # absurd value (year 10,000+) would still overflow datetime.
    try:
        return datetime.fromtimestamp(int(payload[claim]), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise NotificationAuthError(f"token {claim} claim is out of range") from None


class NotificationAuthenticator:
    """Validates notification bearer tokens against the calling platform's keys.

    One instance is meant to be shared by all webhook threads: the key cache and
    its refresh are guarded by a lock, and lookups of a cached key take no lock.
    """

    def __init__(
        self,
        config: NotificationAuthConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build an authenticator; no network traffic until the first token.

        ``clock`` is a monotonic clock in seconds; tests pass a fake one to move
        past the cache TTL and the refetch interval without sleeping.
        """
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        # Replaced wholesale on every successful fetch and never mutated, so
        # readers may use a reference without holding the lock.
        self._keys: Mapping[str, jwt.PyJWK] = MappingProxyType({})
        self._fetched_at: float | None = None
        self._last_kid_refetch_at: float | None = None
        self._last_failure_at: float | None = None
        self._last_failure: str = ""
        # Tokens accepted, by their text, with the kid and key that verified
        # them (``validate``); cleared when full.
        self._verified: dict[str, tuple[str, jwt.PyJWK, NotificationClaims]] = {}

    @property
    def config(self) -> NotificationAuthConfig:
        return self._config

    def validate(self, authorization_header: str | None) -> NotificationClaims:
        """Check an ``Authorization`` header value and return the token's claims.

        Steps:
        1. The header must be ``Bearer <token>`` (scheme case-insensitive).
        2. The token header must parse, say ``alg: RS256`` and name a ``kid``.
        3. The key for that ``kid`` comes from the cache, loading or refreshing the
           key set when it is empty or older than ``cache_ttl_seconds``; an unknown
           ``kid`` refetches the set at most once per
           ``refetch_min_interval_seconds``.
        4. Signature, ``iss`` (any of ``issuers``), ``aud``, ``exp``/``nbf``/``iat``
           (with ``leeway_seconds``) are checked; ``exp``, ``iat``, ``iss``, ``aud``
           must be present. ``nbf`` is checked when present, as the Microsoft
           samples' validator does.
        5. ``tid`` must be a non-empty string.

        A token accepted before is accepted again without steps 2-5 while it is
        unexpired and its key is still the cached one (``_still_valid``).

        Raises ``NotificationAuthError`` naming the failed check, or its subclass
        ``SigningKeysUnavailableError`` when no keys could be loaded at all.
        """
        token = self._bearer_token(authorization_header)
        known = self._verified.get(token)
        if known is not None and self._still_valid(*known):
            return known[2]
        kid, key, claims = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = (kid, key, claims)
        return claims

    def _still_valid(
        self, kid: str, key: jwt.PyJWK, claims: NotificationClaims
    ) -> bool:
        """Whether a token this authenticator accepted would be accepted again now
        without checking it again: unexpired (with the leeway, as PyJWT checks
        it), and verified with the key the cache still holds for its ``kid``, the
        cache fresh. A token whose ``nbf``/``iat`` passed stays past them; a key
        set refetched since holds new key objects, so the token is checked again
        against it (a key Microsoft withdrew refuses it then)."""
        return (
            claims.expires_at.timestamp() > time.time() - self._config.leeway_seconds
            and self._keys.get(kid) is key
            and self._is_fresh(self._clock())
        )

    def _verify(self, token: str) -> tuple[str, jwt.PyJWK, NotificationClaims]:
        """The token's ``kid``, the key that verified it and its claims (steps
        2-5 of ``validate``)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotificationAuthError(f"malformed token: {exc}") from None

        alg = header.get("alg")
        if alg != ALLOWED_ALGORITHM:
            raise NotificationAuthError(
                f"token algorithm {_shown(alg)} is not allowed (only {ALLOWED_ALGORITHM})"
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise NotificationAuthError("token header has no kid")

        key = self._key_for(kid)
        payload = self._decode(token, key)

        tenant_id = payload.get("tid")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise NotificationAuthError("token has no tid (tenant id) claim")
        aud = payload["aud"]
        return (
            kid,
            key,
            NotificationClaims(
                tenant_id=tenant_id,
                # aud may be a list that contains ours; report the one we matched.
                audience=aud if isinstance(aud, str) else self._config.audience,
                issuer=payload["iss"],
                issued_at=_timestamp(payload, "iat"),
                expires_at=_timestamp(payload, "exp"),
                claims=MappingProxyType(payload),
            ),
        )

    # -- header and claims -------------------------------------------------------

    @staticmethod
    def _bearer_token(authorization_header: str | None) -> str:
        if authorization_header is None or not authorization_header.strip():
            raise NotificationAuthError("missing Authorization header")
        scheme, _, token = authorization_header.strip().partition(" ")
        # The scheme is not echoed: a client that forgot "Bearer " would have sent
        # the token itself in its place.
        if scheme.lower() != "bearer":
            raise NotificationAuthError("Authorization scheme is not Bearer")
        token = token.strip()
        if not token:
            raise NotificationAuthError("empty bearer token")
        return token

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        config = self._config
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[ALLOWED_ALGORITHM],
                audience=config.audience,
                issuer=config.issuers,
                leeway=config.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidSignatureError:
            raise NotificationAuthError("bad signature") from None
        except jwt.ExpiredSignatureError:
            raise NotificationAuthError(
                f"token expired (beyond {config.leeway_seconds}s leeway)"
            ) from None
        except jwt.ImmatureSignatureError as exc:
            raise NotificationAuthError(
                f"token not yet valid (beyond {config.leeway_seconds}s leeway): {exc}"
            ) from None
        except jwt.InvalidAudienceError:
            raise NotificationAuthError(
                f"wrong audience (expected {config.audience})"
            ) from None
        except jwt.InvalidIssuerError:
            raise NotificationAuthError(
                f"wrong issuer (expected one of {', '.join(config.issuers)})"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise NotificationAuthError(f"token has no {exc.claim} claim") from None
        except jwt.PyJWTError as exc:
            # DecodeError, InvalidIssuedAtError, InvalidAlgorithmError...: PyJWT's
            # messages describe the defect, never the token's content.
            raise NotificationAuthError(f"invalid token: {exc}") from None

    # -- signing keys ------------------------------------------------------------

    def _is_fresh(self, now: float) -> bool:
        return (
            self._fetched_at is not None
            and now - self._fetched_at < self._config.cache_ttl_seconds
        )

    def _recently_failed(self, now: float) -> bool:
        return (
            self._last_failure_at is not None
            and now - self._last_failure_at < self._config.refetch_min_interval_seconds
        )

    def _key_for(self, kid: str) -> jwt.PyJWK:
        """The verification key for ``kid``, loading or refetching keys if needed.

        Steps (under the lock, after a lock-free fast path):
        1. If the cache is empty or past its TTL, fetch, unless a fetch failed less
           than ``refetch_min_interval_seconds`` ago. A failed fetch keeps the old
           keys in use; with none at all, raise ``SigningKeysUnavailableError``.
        2. Return the key if the cache has ``kid``.
        3. Otherwise refetch once, unless step 1 just fetched or an unknown kid
           (or a failure) caused a fetch less than the minimum interval ago; then
           return the key or refuse the token.
        """
        keys = self._keys
        if kid in keys and self._is_fresh(self._clock()):
            return keys[kid]

        with self._lock:
            now = self._clock()
            fetched_now = False
            if not self._is_fresh(now):
                if self._recently_failed(now):
                    if not self._keys:
                        raise SigningKeysUnavailableError(
                            f"signing keys unavailable: {self._last_failure}"
                        )
                else:
                    fetched_now = self._refresh(now, why="cache empty or expired")

            key = self._keys.get(kid)
            if key is not None:
                return key

            unknown = f"unknown signing key kid {_shown(kid)}"
            if fetched_now:
                raise NotificationAuthError(unknown)
            if (
                self._last_kid_refetch_at is not None
                and now - self._last_kid_refetch_at
                < self._config.refetch_min_interval_seconds
            ) or self._recently_failed(now):
                logger.debug(
                    "Not refetching notification signing keys for an unknown kid: "
                    "last refetch was under %ss ago",
                    self._config.refetch_min_interval_seconds,
                )
                raise NotificationAuthError(f"{unknown} (key refetch rate-limited)")

            self._last_kid_refetch_at = now
            if not self._refresh(now, why="unknown kid"):
                raise NotificationAuthError(
                    f"{unknown} (refetch failed: {self._last_failure})"
                )
            key = self._keys.get(kid)
            if key is None:
                raise NotificationAuthError(f"{unknown}, even after a refetch")
            return key

    def _refresh(self, now: float, *, why: str) -> bool:
        """Fetch the key set; caller holds the lock.

        Returns whether the fetch succeeded. On failure the cached keys stay in use
        and the error is remembered; with no cached keys at all it raises
        ``SigningKeysUnavailableError`` instead of returning ``False``.
        """
        try:
            keys = self._fetch_keys()
        except _KeyFetchError as exc:
            self._last_failure_at = now
            self._last_failure = str(exc)
            if not self._keys:
                logger.warning(
                    "Cannot load notification signing keys (%s): %s",
                    why,
                    self._last_failure,
                )
                raise SigningKeysUnavailableError(
                    f"signing keys unavailable: {self._last_failure}"
                ) from None
            logger.warning(
                "Cannot refresh notification signing keys (%s), keeping %d cached: %s",
                why,
                len(self._keys),
                self._last_failure,
            )
            return False

        self._keys = MappingProxyType(keys)
        self._fetched_at = now
        self._last_failure_at = None
        self._last_failure = ""
        logger.info(
            "Loaded %d notification signing key(s) (%s): %s",
            len(keys),
            why,
            ", ".join(sorted(keys)),
        )
        return True

    def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        """Fetch the OpenID document, then the JWKS it names; keys by kid.

        Raises ``_KeyFetchError`` on any network, TLS, HTTP or format problem.
        """
        config = self._config
        try:
            verify: ssl.SSLContext | bool = (
                ssl.create_default_context(cafile=config.ca_bundle)
                if config.ca_bundle
                else True
            )
        except (OSError, ssl.SSLError) as exc:
            raise _KeyFetchError(
                f"CA bundle {config.ca_bundle} unusable: {exc}"
            ) from exc

        with httpx.Client(
            timeout=config.timeout_seconds, verify=verify, follow_redirects=False
        ) as client:
            openid = _get_json(client, config.openid_url, "OpenID document")
            jwks_uri = openid.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not _is_http_url(jwks_uri):
                raise _KeyFetchError(
                    f"OpenID document at {config.openid_url} has no usable jwks_uri"
                )
            jwks = _get_json(client, jwks_uri, "JWKS")

        return _parse_jwks(jwks, jwks_uri)


def _is_http_url(value: str) -> bool:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return False
    return url.scheme in {"http", "https"} and bool(url.host)


def _get_json(client: httpx.Client, url: str, what: str) -> dict[str, Any]:
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _KeyFetchError(f"{what} {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code != httpx.codes.OK:
        raise _KeyFetchError(f"{what} {url}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError as exc:
        raise _KeyFetchError(f"{what} {url} is not JSON") from exc
    if not isinstance(body, dict):
        raise _KeyFetchError(f"{what} {url} is not a JSON object")
    return body


def _parse_jwks(jwks: Mapping[str, Any], jwks_uri: str) -> dict[str, jwt.PyJWK]:
    """The usable RS256 signing keys of a JWKS, by kid.

    Entries without a kid, of another key type, meant for encryption, or labelled
    for another algorithm are skipped rather than failing the whole set: Microsoft
    may publish keys we have no use for next to the ones that sign notifications.
    """
    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise _KeyFetchError(f"JWKS {jwks_uri} has no keys list")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if (
            not isinstance(kid, str)
            or not kid
            or entry.get("kty") != "RSA"
            or entry.get("use", "sig") != "sig"
            or entry.get("alg", ALLOWED_ALGORITHM) not in _RS256_KEY_LABELS
        ):
            logger.debug("Skipping JWKS entry %s from %s", _shown(kid), jwks_uri)
            continue
        try:
            # Bind RS256 explicitly: the key may carry no alg, or the "RSA256" label.
            keys[kid] = jwt.PyJWK(entry, algorithm=ALLOWED_ALGORITHM)
        except jwt.PyJWTError as exc:
            logger.warning(
                "Skipping unusable JWKS key %s from %s: %s", _shown(kid), jwks_uri, exc
            )
    if not keys:
        raise _KeyFetchError(f"JWKS {jwks_uri} has no usable RS256 signing keys")
    return keys
