"""Security headers on every page, whatever answers it (a page, the admin, an
error, the sign-in flow, JSON endpoints): CSP without inline script and with
frame-ancestors, a referrer policy, no sniffing, no framing; HSTS once behind TLS."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest

from tests.factories import CallFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "/accounts/login/",
    "/",
    "/meetings/",
    "/history/",
    "/reports/",
    "/audit/",
    "/settings/",
    "/admin/",
    "/admin/auth/user/",
    "/healthz",
    "/metrics",
    "/calls/999999/",  # a 404
    "/accounts/microsoft/callback",  # a refused sign-in (no flow)
    "/api/docs/",
    "/api/schema/",
    "/api/v1/calls/",  # 401 for the anonymous, JSON for a signed-in browser
    "/api/v1/nothing/",  # the API's 404
]


def check(response: Any, *, https: bool) -> None:
    path = response.wsgi_request.path
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {p.split()[0]: p.split()[1:] for p in csp.split(";") if p.strip()}
    assert directives.get("frame-ancestors") == ["'none'"], path
    assert directives.get("script-src") == ["'self'"], path
    assert "'unsafe-inline'" not in csp, path
    assert response.headers.get("Referrer-Policy") == "same-origin", path
    assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    assert response.headers.get("X-Frame-Options") == "DENY", path
    assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin", path
    hsts = response.headers.get("Strict-Transport-Security")
    if https:
        assert hsts == "max-age=31536000; includeSubDomains", path
    else:
        assert hsts is None, path


@pytest.mark.parametrize("https", [False, True])
def test_every_page_carries_the_security_headers(
    client: Client, alice: Any, settings: Any, https: bool
) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    call = CallFactory()
    anonymous = Client()
    for page in [*PAGES, f"/calls/{call.pk}/"]:
        check(anonymous.get(page, secure=https), https=https)
    client.force_login(alice)
    for page in [*PAGES, f"/calls/{call.pk}/"]:
        check(client.get(page, secure=https), https=https)
