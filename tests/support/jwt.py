"""Test support: tokens shaped like Microsoft's notification JWTs, and a JWKS server.

``TestTokenIssuer`` holds RSA signing keys and mints RS256 tokens with the claims the
calling platform sends (contract §8): ``iss`` https://api.botframework.com, ``aud`` the
bot's app id, ``tid``, ``iat``/``nbf``/``exp`` an hour apart. ``JwksServer`` serves its
OpenID document and JWKS over real HTTP (or HTTPS from a trustme CA) on 127.0.0.1,
counts requests per path, and can be told to fail.

RSA keys are generated once per process and handed out by slot, so a test that
builds issuers, rotates keys and forges tokens does not pay ~40 ms per key.
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

# The emulator's app and tenant (callbot/settings.py EMULATOR_CLIENT_ID and
# EMULATOR_TENANT_ID, also the contract's example claims), so tokens minted with the
# defaults are accepted by a webhook running on default settings.
DEFAULT_APP_ID: Final = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
DEFAULT_TENANT_ID: Final = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
BOT_FRAMEWORK_ISSUER: Final = "https://api.botframework.com"
GRAPH_ISSUER: Final = "https://graph.microsoft.com"
# The documented example spans iat → exp = 3,900 s.
DEFAULT_LIFETIME_SECONDS: Final = 3900

OPENID_PATH: Final = "/v1/.well-known/OpenIdConfiguration"
KEYS_PATH: Final = "/v1/keys"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()
"""Pass as a claim (``mint(tid=OMIT)``) or as ``kid`` to leave it out of the token."""


@functools.cache
def pooled_rsa_key(slot: int) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, the same for a given slot for the whole test run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestTokenIssuer:
    """Mints notification tokens like the Microsoft calling platform's.

    It owns a *current* key (with ``kid``) that signs ``mint()`` tokens, and a list of
    *published* keys that ``jwks()`` exposes. ``rotate()`` makes a new key current.
    """

    __test__ = False  # a helper, not a pytest test class

    def __init__(
        self,
        *,
        audience: str = DEFAULT_APP_ID,
        tenant_id: str = DEFAULT_TENANT_ID,
        issuer: str = BOT_FRAMEWORK_ISSUER,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    ) -> None:
        self.audience = audience
        self.tenant_id = tenant_id
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds
        self._next_slot = 0
        self._lock = threading.Lock()
        self.key = self.new_key()
        self.kid = self.new_kid()
        self._published: dict[str, rsa.RSAPrivateKey] = {self.kid: self.key}

    # -- keys --------------------------------------------------------------------

    def new_key(self) -> rsa.RSAPrivateKey:
        """A key this issuer has not used yet (from the process-wide pool)."""
        with self._lock:
            slot = self._next_slot
            self._next_slot += 1
        return pooled_rsa_key(slot)

    @staticmethod
    def new_kid() -> str:
        # Microsoft's kids are base64url thumbprints; any unique string will do.
        return uuid.uuid4().hex

    def rotate(self, *, keep_old: bool = False) -> str:
        """Make a new key current and publish it; return its kid.

        With ``keep_old`` the previous keys stay published (Microsoft's overlap
        window); without, the JWKS holds only the new key.
        """
        key, kid = self.new_key(), self.new_kid()
        with self._lock:
            if not keep_old:
                self._published.clear()
            self._published[kid] = key
            self.key, self.kid = key, kid
        return kid

    @property
    def published_kids(self) -> list[str]:
        with self._lock:
            return list(self._published)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document, shaped like https://api.aps.skype.com/v1/keys."""
        with self._lock:
            published = list(self._published.items())
        keys = []
        for kid, key in published:
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            # Microsoft's keys carry kty, use, kid, n, e (plus x5t/x5c), no alg.
            keys.append(
                {"kty": "RSA", "use": "sig", "kid": kid, "n": jwk["n"], "e": jwk["e"]}
            )
        return {"keys": keys}

    def openid_config(self, base_url: str) -> dict[str, Any]:
        """The OpenID document, shaped like the calling platform's, for ``base_url``."""
        base = base_url.rstrip("/")
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/v1/authorize",
            "jwks_uri": f"{base}{KEYS_PATH}",
            # Sic: Microsoft's document says "RSA256".
            "id_token_signing_alg_values_supported": ["RSA256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    # -- tokens ------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Default claims (issued now, valid for the lifetime) with ``overrides``.

        A value of ``OMIT`` removes the claim.
        """
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "tid": self.tenant_id,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not OMIT}

    def mint(self, **claim_overrides: Any) -> str:
        """An RS256 token signed with the current key, e.g. ``mint(aud="other")``."""
        return self.mint_with(**claim_overrides)

    def mint_with(
        self,
        *,
        key: rsa.RSAPrivateKey | str | bytes | None = None,
        kid: str | _Omit | None = None,
        headers: Mapping[str, Any] | None = None,
        algorithm: str = "RS256",
        **claim_overrides: Any,
    ) -> str:
        """A token with a chosen key, kid, header or algorithm.

        ``key`` defaults to the current key (``algorithm="none"`` needs none);
        ``kid`` defaults to the current kid, ``OMIT`` leaves it out; ``headers``
        adds or replaces header fields.
        """
        if key is None and algorithm != "none":
            key = self.key
        header: dict[str, Any] = {}
        chosen_kid = self.kid if kid is None else kid
        if chosen_kid is not OMIT:
            header["kid"] = chosen_kid
        header.update(headers or {})
        return jwt.encode(
            self.claims(**claim_overrides),
            key,  # type: ignore[arg-type]  # None is valid for alg "none"
            algorithm=algorithm,
            headers=header,
        )

    def bearer(self, **claim_overrides: Any) -> str:
        """An ``Authorization`` header value carrying ``mint(**claim_overrides)``."""
        return f"Bearer {self.mint(**claim_overrides)}"


class JwksServer:
    """A real HTTP server for the issuer's OpenID document and JWKS.

    Serves ``/v1/.well-known/OpenIdConfiguration`` and ``/v1/keys`` from the issuer's
    live state, so ``issuer.rotate()`` shows up on the next fetch. ``requests``
    counts hits per path. ``fail_with(503)`` answers every request with that status;
    ``respond(path, status, body)`` serves a fixed document for one path; ``stop()``
    closes the socket so connections are refused.

    Pass ``tls=`` a ``trustme.CA`` to serve HTTPS with a certificate for 127.0.0.1
    from that CA, as the emulator does.
    """

    def __init__(self, issuer: TestTokenIssuer, *, tls: Any | None = None) -> None:
        self.issuer = issuer
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._failure: int | None = None
        self._overrides: dict[str, tuple[int, Any]] = {}
        self._tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    @property
    def openid_url(self) -> str:
        return f"{self.base_url}{OPENID_PATH}"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}{KEYS_PATH}"

    def count(self, path: str) -> int:
        with self._lock:
            return self.requests[path]

    @property
    def openid_fetches(self) -> int:
        return self.count(OPENID_PATH)

    @property
    def jwks_fetches(self) -> int:
        return self.count(KEYS_PATH)

    def rotate(self, *, keep_old: bool = False) -> str:
        """Rotate the issuer's signing key; the next JWKS fetch serves the new one."""
        return self.issuer.rotate(keep_old=keep_old)

    def fail_with(self, status: int | None) -> None:
        """Answer every request with ``status`` (``None`` to serve normally again)."""
        with self._lock:
            self._failure = status

    def respond(self, path: str, status: int, body: Any) -> None:
        """Serve ``body`` (JSON, or ``str`` sent as is) with ``status`` at ``path``."""
        with self._lock:
            self._overrides[path] = (status, body)

    def start(self) -> JwksServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        server.daemon_threads = True
        scheme = "http"
        if self._tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        host, port = server.server_address[:2]
        self.base_url = f"{scheme}://{host!s}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="jwks-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut down and close the socket; later connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answer(self, path: str) -> tuple[int, Any]:
        with self._lock:
            self.requests[path] += 1
            if self._failure is not None:
                return self._failure, {"error": "injected failure"}
            if path in self._overrides:
                return self._overrides[path]
        if path == OPENID_PATH:
            return HTTPStatus.OK, self.issuer.openid_config(self.base_url)
        if path == KEYS_PATH:
            return HTTPStatus.OK, self.issuer.jwks()
        return HTTPStatus.NOT_FOUND, {"error": "not found"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        answer: Callable[[str], tuple[int, Any]] = self._answer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = answer(self.path.split("?", 1)[0])
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


@contextmanager
def running_jwks_server(
    issuer: TestTokenIssuer, *, tls: Any | None = None
) -> Iterator[JwksServer]:
    """Start a ``JwksServer`` for the block and stop it afterwards."""
    server = JwksServer(issuer, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()
