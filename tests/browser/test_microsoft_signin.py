"""Sign in with Microsoft in a browser: Callbot's sign-in page sends the person to
the emulator's Entra ID page, they pick their account, and land on the board with
the role their token's app roles (or groups) map to."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import CallbotServer, watch_policy

pytestmark = pytest.mark.browser


def sign_in_with_microsoft(browser: Any, server: CallbotServer, account: str) -> Any:
    # The emulator's certificate comes from its own CA, which Chromium does not know.
    context = browser.new_context(ignore_https_errors=True)
    context.csp_violations = watch_policy(context)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{server.url}/")
    page.click("#microsoft-signin")
    page.wait_for_selector("text=Pick an account")
    page.click(f'button[data-person="{account}"]')
    return page


@pytest.mark.parametrize(
    ("account", "role"),
    [
        # An app role: Callbot.Admin.
        ("ana.lopez@contoso.example", "Admin"),
        # A group claim mapped by ENTRA_ROLE_MAP: the "Callbot auditors" group.
        ("sam.okafor@contoso.example", "Auditor"),
    ],
)
def test_a_person_signs_in_through_microsoft_and_lands_with_the_mapped_role(
    browser: Any, server: CallbotServer, account: str, role: str
) -> None:
    page = sign_in_with_microsoft(browser, server, account)
    page.wait_for_selector("body[data-live=connected]")
    assert page.url.rstrip("/") == server.url
    assert page.locator("header .role").inner_text() == role
    assert account in page.locator("header").inner_text()
    trail = server.manage(
        "shell",
        "-c",
        "from callbot.calls.models import AuditEntry; "
        f"e = AuditEntry.objects.filter(action='sign_in', target='{account}')"
        ".latest('pk'); print(e.outcome, e.detail)",
    )
    assert trail.strip().splitlines()[-1] == "succeeded {'method': 'microsoft'}"
    page.context.close()
    assert page.context.csp_violations == []


def test_a_person_without_a_callbot_role_is_refused(
    browser: Any, server: CallbotServer
) -> None:
    page = sign_in_with_microsoft(browser, server, "kim.park@contoso.example")
    page.wait_for_selector("text=Sign-in refused")
    assert "no Callbot role" in page.locator("p.error").inner_text()
    page.context.close()
