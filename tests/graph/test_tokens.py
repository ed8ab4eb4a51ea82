"""MsalTokenProvider with real msal against a local HTTPS identity endpoint.

The server (threaded ``http.server`` behind TLS from a ``trustme`` CA) serves the
OpenID configuration msal reads at ``/{tenant}/v2.0/.well-known/openid-configuration``
and a client-credentials token endpoint at ``/{tenant}/oauth2/v2.0/token``, and counts
what it is asked, so the tests can prove what msal does (and does not) send.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import msal
import pytest
import trustme

from callbot.graph.errors import GraphAuthError
from callbot.graph.tokens import MsalTokenProvider, StaticTokenProvider

TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
OTHER_TENANT = "0f9e8d7c-6b5a-4948-8372-615049382716"
CLIENT_ID = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
SECRET = "s3cr3t-value-never-logged"
SCOPE = "https://graph.microsoft.com/.default"


class IdentityServer:
    """A minimal Entra ID look-alike for the client-credentials flow."""

    tenants: ClassVar[frozenset[str]] = frozenset({TENANT, OTHER_TENANT})

    def __init__(self, ca: trustme.CA) -> None:
        self.requests: list[tuple[str, str]] = []
        self.forms: list[dict[str, str]] = []
        self.issued = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(("GET", self.path))
                tenant, _, rest = self.path.lstrip("/").partition("/")
                if rest != "v2.0/.well-known/openid-configuration":
                    self._reply(404, {"error": "not_found"})
                elif tenant not in server.tenants:
                    self._reply(400, {"error": "invalid_tenant"})
                else:
                    root = f"{server.url}/{tenant}"
                    self._reply(
                        200,
                        {
                            "issuer": f"{root}/v2.0",
                            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                            "token_endpoint": f"{root}/oauth2/v2.0/token",
                        },
                    )

            def do_POST(self) -> None:
                server.requests.append(("POST", self.path))
                length = int(self.headers.get("Content-Length", "0"))
                form = {
                    k: v[0]
                    for k, v in parse_qs(self.rfile.read(length).decode()).items()
                }
                server.forms.append(form)
                tenant, _, rest = self.path.lstrip("/").partition("/")
                if rest != "oauth2/v2.0/token" or tenant not in server.tenants:
                    self._reply(404, {"error": "not_found"})
                elif form.get("client_secret") != SECRET:
                    self._reply(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client "
                            "secret provided.\r\nTrace ID: 1\r\nCorrelation ID: 2",
                        },
                    )
                else:
                    server.issued += 1
                    self._reply(
                        200,
                        {
                            "token_type": "Bearer",
                            "expires_in": 3599,
                            "ext_expires_in": 3599,
                            "access_token": f"token-{tenant[:4]}-{server.issued}",
                        },
                    )

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class QuietServer(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # failed TLS handshakes are what some tests are about

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._httpd = QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(
            self._httpd.socket, server_side=True, do_handshake_on_connect=False
        )
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self._thread.start()

    def token_posts(self) -> int:
        return sum(1 for method, _ in self.requests if method == "POST")

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[IdentityServer]:
    identity = IdentityServer(ca)
    yield identity
    identity.close()


@pytest.fixture(autouse=True)
def no_ambient_ca_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


def provider_for(
    server: IdentityServer, ca_file: str | None, secret: str = SECRET, **kwargs: Any
) -> MsalTokenProvider:
    return MsalTokenProvider(
        CLIENT_ID, secret, f"{server.url}/{TENANT}", SCOPE, ca_file, **kwargs
    )


def test_msal_acquires_a_client_credentials_token(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file)

    token = provider.get_token()

    assert token == f"token-{TENANT[:4]}-1"
    assert server.requests == [
        ("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{TENANT}/oauth2/v2.0/token"),
    ]
    form = server.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == CLIENT_ID
    assert SCOPE in form["scope"].split()


def test_a_second_call_is_served_from_cache_without_http(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file)
    first = provider.get_token()
    seen = len(server.requests)

    assert provider.get_token() == first
    assert len(server.requests) == seen


def test_msals_own_cache_answers_when_our_guard_has_lapsed(
    server: IdentityServer, ca_file: str
) -> None:
    now = [1_000.0]
    provider = provider_for(server, ca_file, clock=lambda: now[0])
    first = provider.get_token()
    now[0] += 3_400  # past our guard (expiry minus 330 s); msal's clock is real

    assert provider.get_token() == first
    assert server.token_posts() == 1


def test_an_invalidated_token_is_replaced_by_a_fresh_one(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file)
    first = provider.get_token()

    provider.invalidate(first)
    second = provider.get_token()

    assert second != first
    assert server.token_posts() == 2


def test_invalidating_a_token_already_replaced_does_nothing(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file)
    first = provider.get_token()
    provider.invalidate(first)
    second = provider.get_token()

    provider.invalidate(first)  # a slow thread reporting the old token

    assert provider.get_token() == second
    assert server.token_posts() == 2


def test_each_tenant_gets_its_own_authority_and_token(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file)

    home = provider.get_token()
    other = provider.get_token(OTHER_TENANT)

    assert home != other
    assert other.startswith(f"token-{OTHER_TENANT[:4]}-")
    assert ("POST", f"/{OTHER_TENANT}/oauth2/v2.0/token") in server.requests
    assert provider.get_token(OTHER_TENANT) == other
    assert server.token_posts() == 2


def test_a_bad_secret_is_a_graph_auth_error_without_the_secret(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file, secret="wrong-" + SECRET)

    with pytest.raises(GraphAuthError) as caught:
        provider.get_token()

    err = caught.value
    assert err.code == "invalid_client"
    assert "Invalid client secret" in err.message
    assert not err.retryable
    for text in (str(err), repr(err), err.message):
        assert SECRET not in text
        assert "Trace ID" not in text


def test_an_unknown_tenant_is_a_graph_auth_error(
    server: IdentityServer, ca_file: str
) -> None:
    provider = provider_for(server, ca_file)

    with pytest.raises(GraphAuthError) as caught:
        provider.get_token("no-such-tenant")

    assert caught.value.code == "invalid_authority"


def test_the_given_ca_is_trusted_whatever_requests_ca_bundle_says(
    server: IdentityServer, ca_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets REQUESTS_CA_BUNDLE override Session.verify unless trust_env is
    # off; a bogus value would break msal if it leaked through.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bogus-ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/bogus-ca.pem")

    assert provider_for(server, ca_file).get_token().startswith("token-")


def test_without_the_ca_the_server_is_not_trusted(server: IdentityServer) -> None:
    with pytest.raises(GraphAuthError) as caught:
        provider_for(server, None).get_token()

    assert caught.value.retryable  # could not reach a trusted endpoint
    assert server.token_posts() == 0


def test_another_ca_is_not_trusted(server: IdentityServer, tmp_path: Path) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))

    with pytest.raises(GraphAuthError):
        provider_for(server, str(stranger)).get_token()

    assert server.token_posts() == 0


def test_a_non_https_authority_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="https"):
        MsalTokenProvider(CLIENT_ID, SECRET, f"http://127.0.0.1:1/{TENANT}", SCOPE)


def test_microsoft_authorities_keep_msals_validation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # msal's constructor fetches the OpenID document; record its arguments instead.
    seen: dict[str, Any] = {}

    class RecordingApp:
        def __init__(self, client_id: str, **kwargs: Any) -> None:
            seen.update(kwargs, client_id=client_id)

        def acquire_token_for_client(self, scopes: list[str]) -> dict[str, Any]:
            return {"access_token": "ms-token", "expires_in": 3599}

    monkeypatch.setattr(msal, "ConfidentialClientApplication", RecordingApp)
    provider = MsalTokenProvider(
        CLIENT_ID, SECRET, f"https://login.microsoftonline.com/{TENANT}", SCOPE
    )

    assert provider.get_token(OTHER_TENANT) == "ms-token"
    assert seen["authority"] == f"https://login.microsoftonline.com/{OTHER_TENANT}"
    assert seen["validate_authority"] is True
    assert seen["instance_discovery"] is None
    assert seen["http_client"].trust_env is True  # no bundle: environment as usual


def test_static_token_provider_moves_on_after_invalidation() -> None:
    provider = StaticTokenProvider("one", "two")

    assert provider.get_token() == "one"
    provider.invalidate("one")
    assert provider.get_token("t") == "two"
    assert provider.tenants == [None, "t"]
