"""The permissions panel reads the app's real token from the emulator (msal over
TLS) and names what is missing."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest

from tests.e2e.conftest import Callbot

pytestmark = pytest.mark.e2e


def test_with_every_permission_the_panel_shows_all_granted(
    quiet_bot: Callbot, alice: Any
) -> None:
    client = Client()
    client.force_login(alice)

    page = client.get("/settings/permissions/")

    assert page.status_code == 200
    report = page.context["report"]
    assert report.missing == ()
    assert "Calls.JoinGroupCall.All" in report.held
    assert page.context["grant"].app_id == quiet_bot.emulator.config.bot.client_id
    assert b'id="all-granted"' in page.content


def test_a_revoked_permission_is_named_after_checking_again(
    quiet_bot: Callbot, alice: Any
) -> None:
    client = Client()
    client.force_login(alice)
    client.get("/settings/permissions/")  # a token with every role is cached
    quiet_bot.emulator.control(
        "PATCH", "/config", {"revokePermissions": ["Calls.AccessMedia.All"]}
    )

    checked = client.post("/settings/permissions/", follow=True)

    report = checked.context["report"]
    assert [m.name for m in report.missing] == ["Calls.AccessMedia.All"]
    assert "Calls.AccessMedia.All" not in checked.context["grant"].roles
    assert b'data-permission="Calls.AccessMedia.All"' in checked.content
    assert b"IVR menus hear no key presses" in checked.content
    assert b"Checked with a new access token." in checked.content


def test_only_admins_see_the_panel(quiet_bot: Callbot, bob: Any) -> None:
    client = Client()
    client.force_login(bob)

    assert client.get("/settings/permissions/").status_code == 403
    assert client.post("/settings/permissions/").status_code == 403
