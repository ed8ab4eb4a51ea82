"""Honest controls in the browser: what Graph does not allow on a call is shown
disabled with its reason; the bot dropped from a call says why; the permissions
panel names what the app lacks. Screenshots go to the test-artifacts directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer
from tests.support.emulator import RunningEmulator, wait_until

pytestmark = pytest.mark.browser

ANA = {"user": {"displayName": "Ana Lopez"}}
RAVI = {"user": {"displayName": "Ravi Iyer"}}
P2P_REFUSED = {
    "mute_all": "Teams lets a bot mute people only in group calls and meetings; "
    "this is a peer-to-peer call.",
    "mute_bot": "Teams lets a bot mute itself only in group calls and meetings; "
    "this is a peer-to-peer call.",
    "unmute_participant": "Teams does not let a bot unmute someone else; ask them "
    "to unmute themselves.",
    "change_screen_sharing_role": "Teams lets a bot change its screen-sharing role "
    "only in group calls and meetings; this is a peer-to-peer call.",
}
NO_APP_MEDIA = (
    "Teams lets a bot change its screen-sharing role only when the app hosts the "
    "call's media; Teams hosts this call's media."
)
DROPPED = (
    "Teams dropped the bot when this call became a group call: the app lacks "
    "Calls.JoinGroupCall.All, which would have kept it in the call."
)


@pytest.fixture
def fresh_emulator(
    emulator: RunningEmulator, server: CallbotServer
) -> Iterator[RunningEmulator]:
    """The emulator as it started (every permission), before and after the test.
    Prompts last a minute, so the demo IVR keeps a peer-to-peer call up while the
    page is looked at."""
    webhook = f"{server.url}/api/calling/callback"
    emulator.reset(webhook)
    emulator.control("PATCH", "/config", {"mediaSeconds": 60})
    yield emulator
    emulator.reset(webhook)


def ring(emulator: RunningEmulator, caller: dict[str, Any] = ANA) -> str:
    """Somebody calls the bot; the demo policy answers. Returns Graph's call id."""
    call_id: str = emulator.control("POST", "/calls/incoming", {"from": caller})[
        "callId"
    ]
    wait_until(
        lambda: emulator.control("GET", f"/calls/{call_id}")["state"] == "established",
        timeout=15,
    )
    return call_id


def open_call(page: Any, text: str) -> None:
    page.locator("#board-rows tr", has_text=text).get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    page.wait_for_selector("#call[data-version]:not([data-version=''])")


def refused_controls_state_their_reason(page: Any) -> dict[str, str]:
    """Every refused control on the page: disabled with its reason in its tooltip,
    and, when shown, described by a visible one-line element that states the
    reason. Returns kind -> reason."""
    found: dict[str, str] = {}
    controls = page.locator("[data-kind][data-not-offered=true]")
    for index in range(controls.count()):
        control = controls.nth(index)
        kind = control.get_attribute("data-kind")
        reason = control.get_attribute("title")
        assert control.is_disabled(), kind
        assert reason, kind
        found[kind] = reason
        if not control.is_visible():
            continue  # the bot's unmute while it is not muted: its pair says it
        described = page.locator(f"#{control.get_attribute('aria-describedby')}")
        assert described.is_visible(), kind
        assert reason in described.inner_text(), kind
        box = described.bounding_box()
        assert box is not None, kind
        assert box["height"] < 24, f"{kind}: one line"
    return found


def test_a_peer_to_peer_call_offers_only_what_graph_allows(
    open_page: Any, fresh_emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    ring(fresh_emulator, {"user": {"displayName": "Dana Webb"}})
    open_call(page, "Dana Webb")
    page.locator("#controls [data-kind=mute_bot][data-not-offered=true]").wait_for(
        state="attached"
    )

    refused = refused_controls_state_their_reason(page)

    assert {k: refused[k] for k in P2P_REFUSED} == P2P_REFUSED
    controls = page.locator("#controls")
    for kind in ("hang_up", "play_prompt", "invite", "update_recording_status"):
        # A kind may have several controls (Invite, Move into this call).
        for control in controls.locator(f"[data-kind={kind}]").all():
            assert control.is_enabled(), kind
    # The page's labels come from the accessible tree too.
    mute_bot = controls.get_by_role("button", name="Mute the bot")
    assert mute_bot.get_attribute("title") == P2P_REFUSED["mute_bot"]
    page.screenshot(path=artifacts / "call-p2p-supervisor.png", full_page=True)
    assert page.errors == []


def test_a_meeting_offers_mute_but_no_screen_sharing_on_service_hosted_media(
    open_page: Any, start_meeting: Any, artifacts: Path
) -> None:
    meeting = start_meeting("Honest bridge", ["Ana Lopez", "Lee Chen"])
    page = open_page("bob")
    open_call(page, "Honest bridge")
    ana = page.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Ana Lopez']}']"
    )
    ana.and_(page.locator("[data-muted]")).wait_for()
    controls = page.locator("#controls")
    controls.locator(
        "[data-kind=change_screen_sharing_role][data-not-offered=true]"
    ).wait_for(state="attached")

    refused = refused_controls_state_their_reason(page)

    assert refused == {
        "change_screen_sharing_role": NO_APP_MEDIA,
        "unmute_participant": P2P_REFUSED["unmute_participant"],
    }
    assert controls.get_by_role("button", name="Mute the bot").is_enabled()
    assert controls.get_by_role(
        "button", name="Mute everyone except presenters"
    ).is_enabled()
    assert ana.get_by_role("button", name="Mute", exact=True).is_enabled()
    assert page.get_by_text(NO_APP_MEDIA).is_visible()
    page.screenshot(path=artifacts / "call-meeting-supervisor.png", full_page=True)
    assert page.errors == []


def test_the_bot_dropped_from_a_call_is_on_the_board_and_the_call_page(
    open_page: Any, fresh_emulator: RunningEmulator, artifacts: Path
) -> None:
    fresh_emulator.control(
        "PATCH",
        "/config",
        {
            "revokePermissions": [
                "Calls.JoinGroupCall.All",
                "Calls.JoinGroupCallAsGuest.All",
            ]
        },
    )
    page = open_page("bob")
    call_id = ring(fresh_emulator, {"user": {"displayName": "Omar Haddad"}})
    page.locator("#board-rows tr", has_text="Omar Haddad").wait_for()

    fresh_emulator.control("POST", f"/calls/{call_id}/escalate", {"add": RAVI})

    notice = page.locator("#board-notices li", has_text="Omar Haddad")
    notice.wait_for()
    assert DROPPED in notice.inner_text()
    page.screenshot(path=artifacts / "board-dropped.png")

    notice.get_by_role("link", name="Omar Haddad").click()
    page.wait_for_selector("body[data-live=connected]")
    dropped = page.locator("#call-dropped")
    dropped.wait_for()
    assert dropped.inner_text() == DROPPED
    assert page.locator("#f-state").inner_text().lower() == "terminated"
    page.screenshot(path=artifacts / "call-dropped.png", full_page=True)
    assert page.errors == []


def test_the_permissions_panel_names_a_missing_permission(
    open_page: Any,
    fresh_emulator: RunningEmulator,
    server: CallbotServer,
    artifacts: Path,
) -> None:
    fresh_emulator.control(
        "PATCH", "/config", {"revokePermissions": ["Calls.AccessMedia.All"]}
    )
    page = open_page("alice")
    page.get_by_role("link", name="Bot settings").click()
    page.get_by_role("link", name="App permissions").click()

    page.get_by_role("button", name="Check again with a new token").click()
    try:
        missing = page.locator("#missing [data-permission='Calls.AccessMedia.All']")
        missing.wait_for()
        assert "IVR menus hear no key presses" in missing.inner_text()
        assert page.locator("#features tr[data-works=false]").count() == 1
        page.screenshot(path=artifacts / "permissions-admin.png", full_page=True)
        assert page.errors == []
    finally:
        # The server keeps the roles it read: read every permission again.
        fresh_emulator.reset(f"{server.url}/api/calling/callback")
        check_roles(page, server)


NO_INITIATE = (
    "Teams lets a bot transfer a call only with the application permission "
    "Calls.Initiate.All, which the app's access token lacks (an admin grants it "
    "in Entra ID)."
)


def check_roles(page: Any, server: CallbotServer) -> None:
    """As an admin, have Callbot read its token's roles again (the panel), so the
    controls follow them."""
    page.goto(f"{server.url}/settings/permissions/")
    page.get_by_role("button", name="Check again with a new token").click()
    page.locator("#features").wait_for()


def test_a_control_whose_permission_the_app_lacks_names_it(
    open_page: Any,
    fresh_emulator: RunningEmulator,
    server: CallbotServer,
    artifacts: Path,
) -> None:
    fresh_emulator.control(
        "PATCH", "/config", {"revokePermissions": ["Calls.Initiate.All"]}
    )
    admin = open_page("alice")
    check_roles(admin, server)
    try:
        page = open_page("bob")
        ring(fresh_emulator, {"user": {"displayName": "Mira Sol"}})
        open_call(page, "Mira Sol")
        transfer = page.locator("#controls [data-kind=transfer]").first
        page.locator(
            "#controls [data-kind=transfer][data-not-offered=true]"
        ).first.wait_for(state="attached")

        assert transfer.is_disabled()
        assert transfer.get_attribute("title") == NO_INITIATE
        line = page.locator("#control-reasons [data-reason-for=transfer]")
        assert NO_INITIATE in line.inner_text()
        assert page.locator("#controls [data-kind=hang_up]").is_enabled()
        page.screenshot(path=artifacts / "call-missing-permission.png", full_page=True)
        assert page.errors == []
    finally:
        # Every permission again, and read again: later tests expect them.
        fresh_emulator.reset(f"{server.url}/api/calling/callback")
        check_roles(admin, server)
