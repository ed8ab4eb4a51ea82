"""Phone numbers without the bot's application instance, in the browser: Graph
reaches a phone number only from one (contract §6.2), so on a server without
``GRAPH_APPLICATION_INSTANCE_ID`` a supervisor who tries to place a call to, redirect
to, transfer to or invite a phone number is refused, in one sentence that names what is
missing; the same actions to a Teams user still work. Screenshots go to the
test-artifacts directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from callbot.calls.params import PHONE_NEEDS_INSTANCE
from tests.browser.conftest import CallbotServer
from tests.browser.test_in_call import ANA, LEE, place_call
from tests.browser.test_ringing import card, events, ring, state_of
from tests.support.emulator import RunningEmulator, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PHONE = "+14255550100"
DESK_ID = "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"


@pytest.fixture(scope="module")
def no_instance(server: CallbotServer) -> Iterator[CallbotServer]:
    """The session's server restarted without an application instance (a tenant
    where none is linked to the bot), for this module only: one restart each way
    rather than a second server. Its database and port stay the same."""
    kept = server.env
    server.stop()
    server.env = {**kept, "GRAPH_APPLICATION_INSTANCE_ID": ""}
    server.start()
    yield server
    server.stop()
    server.env = kept
    server.start()


@pytest.fixture
def bot(emulator: RunningEmulator, no_instance: CallbotServer) -> RunningEmulator:
    emulator.reset(f"{no_instance.url}/api/calling/callback")
    return emulator


@pytest.fixture
def undecided(no_instance: CallbotServer, bot: RunningEmulator) -> Iterator[None]:
    """Peer-to-peer calls left ringing (the demo policy off), and two saved redirect
    targets: a Teams user and a phone line."""
    no_instance.manage(
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; "
        "from callbot.calls.models import RedirectTarget; "
        "CallPolicy.objects.filter(call_kinds='peer_to_peer').update(enabled=False); "
        "RedirectTarget.objects.get_or_create(name='Service desk', "
        f"defaults={{'kind': 'user', 'value': '{DESK_ID}'}}); "
        "RedirectTarget.objects.get_or_create(name='Front desk line', "
        f"defaults={{'kind': 'phone', 'value': '{PHONE}'}})",
    )
    yield
    no_instance.manage(
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; "
        "from callbot.calls.models import RedirectTarget; "
        "CallPolicy.objects.filter(call_kinds='peer_to_peer').update(enabled=True); "
        "RedirectTarget.objects.filter(name='Front desk line').delete()",
    )


def test_placing_a_call_to_a_phone_is_refused_and_to_a_teams_user_works(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    page.get_by_role("link", name="Place a call").click()
    page.get_by_label("A phone number").check()

    # Said where the number is typed, before anyone tries.
    note = page.locator("#phone-refused")
    expect(note).to_have_text(PHONE_NEEDS_INSTANCE)
    assert "GRAPH_APPLICATION_INSTANCE_ID" in note.inner_text()
    page.get_by_label("Phone number", exact=True).fill(PHONE)
    page.get_by_role("button", name="Call").click()

    # The server refuses it too, in the same words, and stays on the form.
    expect(page.locator("#place-form [role=alert]")).to_have_text(PHONE_NEEDS_INSTANCE)
    assert page.url.endswith("/calls/new/")
    page.screenshot(path=artifacts / "place-call-phone-refused.png", full_page=True)

    call_id = place_call(page, ANA, "Ana Lopez")

    assert call_id > 0
    assert page.locator("#call-title").inner_text() == "Ana Lopez"
    assert page.errors == []


@pytest.mark.usefixtures("undecided")
def test_redirecting_to_a_phone_is_refused_and_to_a_teams_user_works(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = ring(bot, "Kim Park")
    kim = card(page, "Kim Park")
    saved = kim.locator("select[name=saved_target]")

    # The saved phone line is listed but cannot be chosen; its title says why.
    line = saved.locator("option", has_text="Front desk line")
    assert line.is_disabled()
    assert line.get_attribute("title") == PHONE_NEEDS_INSTANCE
    # A typed number is refused in the card, before Teams is asked.
    saved.select_option(label="someone else…")
    typed = kim.get_by_label("Teams user id or phone number")
    assert "phone" not in (typed.get_attribute("placeholder") or "")
    typed.fill(PHONE)
    kim.locator("button[data-kind=redirect]").click()
    status = kim.locator(".ring-status")
    expect(status).to_have_text(PHONE_NEEDS_INSTANCE)
    assert status.get_attribute("data-status") == "refused"
    page.screenshot(path=artifacts / "redirect-phone-refused.png")
    assert state_of(bot, call_id) == "incoming"

    saved.select_option(label="Service desk (Teams)")
    kim.locator("button[data-kind=redirect]").click()

    wait_until(lambda: state_of(bot, call_id) == "terminated", timeout=10)
    assert f"bot redirected call {call_id}" in events(bot)
    kim.wait_for(state="detached")
    assert page.errors == []


def test_transferring_to_a_phone_is_refused_and_to_a_teams_user_works(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    place_call(page, ANA, "Ana Lopez")
    page.get_by_role("button", name="Transfer…").click()
    dialog = page.locator("#transfer-dialog")
    outcome = dialog.locator("#transfer-outcome")

    # Said in the dialog before anyone types a number, and not offered.
    expect(dialog.locator("#transfer-phone-refused")).to_have_text(PHONE_NEEDS_INSTANCE)
    field = dialog.get_by_label("Transfer to")
    assert "phone" not in (field.get_attribute("placeholder") or "")
    field.fill(PHONE)
    dialog.get_by_role("button", name="Transfer", exact=True).click()

    expect(outcome).to_have_text(f"Not transferred: {PHONE_NEEDS_INSTANCE}")
    assert outcome.get_attribute("data-status") == "refused"
    page.screenshot(path=artifacts / "transfer-phone-refused.png")
    assert page.locator("#call").get_attribute("data-state") == "established"

    field.fill(LEE)
    dialog.get_by_label("Name").fill("Lee Chen")
    dialog.get_by_role("button", name="Transfer", exact=True).click()

    expect(dialog.locator("#transfer-outcome[data-status=completed]")).to_contain_text(
        "Transferred to Lee Chen", timeout=15_000
    )
    page.locator("#call[data-state=terminated]").wait_for()
    assert re.search(r"/calls/\d+/$", page.url)
    assert page.errors == []


def test_inviting_a_phone_is_refused_and_a_teams_user_is_invited(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    place_call(page, ANA, "Ana Lopez")
    form = page.locator("#invite-form")
    field = form.locator("input[name=target]")

    # Said on the field before anyone types a number.
    expect(field).to_have_attribute("title", PHONE_NEEDS_INSTANCE)
    assert "phone" not in (field.get_attribute("placeholder") or "")
    field.fill(PHONE)
    form.get_by_role("button", name="Invite").click()

    feedback = page.locator("#action-feedback")
    expect(feedback).to_have_text(re.compile(re.escape(PHONE_NEEDS_INSTANCE)))
    page.screenshot(path=artifacts / "invite-phone-refused.png")
    assert page.locator("#call").get_attribute("data-kind") == "peer_to_peer"

    field.fill(LEE)
    form.locator("input[name=display_name]").fill("Lee Chen")
    form.get_by_role("button", name="Invite").click()
    page.locator("#timeline li[data-status=completed]", has_text="Lee Chen").wait_for()
    page.locator("#f-kind", has_text="Group").wait_for()
    assert page.errors == []
