"""Supervisors' in-call work in the browser: place a call and escalate it by
inviting a second person, transfer one call blind and another consultatively,
and see each outcome arrive live. Screenshots go to the test-artifacts directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CallbotServer
from tests.support.emulator import RunningEmulator, wait_until

pytestmark = pytest.mark.browser

ANA = "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170"
LEE = "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"
SAM = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"


@pytest.fixture
def bot(emulator: RunningEmulator, server: CallbotServer) -> RunningEmulator:
    emulator.reset(f"{server.url}/api/calling/callback")
    return emulator


def place_call(
    page: Any, user_id: str, name: str, artifacts: Path | None = None
) -> int:
    """Place a call from the board's "Place a call" form; the call's page opens
    and the call is established. Returns the call's number."""
    page.goto(page.url.split("/calls/")[0].split("/meetings")[0].rstrip("/") + "/")
    page.get_by_role("link", name="Place a call").click()
    page.get_by_label("A Teams user").check()
    page.get_by_label("Azure AD object id").fill(user_id)
    page.locator("#id_display_name").fill(name)
    if artifacts is not None:
        page.screenshot(path=artifacts / "place-call-form.png", full_page=True)
    page.get_by_role("button", name="Call").click()
    page.wait_for_url(re.compile(r"/calls/\d+/$"))
    page.wait_for_selector("body[data-live=connected]")
    page.locator("#call[data-state=established]").wait_for()
    return int(page.locator("#call").get_attribute("data-call-id"))


def test_a_supervisor_places_a_call_and_escalates_it_by_inviting_a_second_person(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")

    call_id = place_call(page, ANA, "Ana Lopez", artifacts)

    assert page.locator("#f-kind").inner_text() == "Peer-to-peer"
    assert page.locator("#call-title").inner_text() == "Ana Lopez"
    assert page.locator("#invite-escalates").is_visible()
    invite = page.locator("#invite-form")
    invite.locator("input[name=target]").fill(SAM)
    invite.locator("input[name=display_name]").fill("Sam Reed")
    invite.get_by_role("button", name="Invite").click()

    page.locator("#timeline li[data-status=completed]", has_text="Sam Reed").wait_for()
    page.locator("#f-kind", has_text="Group").wait_for()
    page.locator("#roster-rows [role=row]", has_text="Sam").first.wait_for()
    assert page.locator("#invite-escalates").is_hidden()
    page.screenshot(path=artifacts / "call-escalated.png", full_page=True)
    assert call_id > 0
    assert page.errors == []


def test_a_supervisor_transfers_a_call_blind_and_sees_it_done(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    place_call(page, ANA, "Ana Lopez")

    page.get_by_role("button", name="Transfer…").click()
    dialog = page.locator("#transfer-dialog")
    dialog.get_by_label("Transfer to").fill(LEE)
    dialog.get_by_label("Name").fill("Lee Chen")
    page.screenshot(path=artifacts / "transfer-dialog.png")
    dialog.get_by_role("button", name="Transfer", exact=True).click()

    outcome = dialog.locator("#transfer-outcome[data-status=completed]")
    outcome.wait_for()
    assert "Transferred to Lee Chen" in outcome.inner_text()
    page.locator("#call[data-state=terminated]").wait_for()
    page.screenshot(path=artifacts / "transfer-done.png")
    assert page.errors == []


def test_a_failed_transfer_says_why_in_words(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = place_call(page, ANA, "Ana Lopez")
    graph_id = page.locator("#call dd code").inner_text()
    bot.control(
        "POST", "/faults", {"transfer_failure": {"count": 1, "match": graph_id}}
    )

    page.get_by_role("button", name="Transfer…").click()
    dialog = page.locator("#transfer-dialog")
    dialog.get_by_label("Transfer to").fill(LEE)
    dialog.get_by_role("button", name="Transfer", exact=True).click()

    outcome = dialog.locator("#transfer-outcome[data-status=failed]")
    outcome.wait_for()
    assert "The transfer target did not take the call" in outcome.inner_text()
    page.screenshot(path=artifacts / "transfer-failed.png")
    assert page.locator("#call").get_attribute("data-state") == "established"
    assert call_id > 0
    # The failed action raised an alert: the call page shows its own, live.
    dialog.get_by_role("button", name="Close").click()
    alert = page.locator("#call-alert-list li[data-kind=action_failed]")
    alert.wait_for()
    assert "Action failed" in alert.inner_text()
    assert page.locator("#call-alerts").is_visible()
    page.screenshot(path=artifacts / "call-alerts-supervisor.png", full_page=True)
    assert page.errors == []


def test_a_supervisor_transfers_a_call_consultatively(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    with_caller = place_call(page, ANA, "Ana Lopez")
    with_target = place_call(page, LEE, "Lee Chen")
    page.goto(page.url.replace(f"/calls/{with_target}/", f"/calls/{with_caller}/"))
    page.locator("#call[data-state=established]").wait_for()

    page.get_by_role("button", name="Transfer…").click()
    dialog = page.locator("#transfer-dialog")
    dialog.get_by_label("Consultative").check()
    consult = dialog.get_by_label("The bot's call with the transfer target")
    consult.locator(f"option[value='{with_target}']").wait_for(state="attached")
    consult.select_option(str(with_target))
    page.screenshot(path=artifacts / "transfer-consultative.png")
    dialog.get_by_role("button", name="Transfer", exact=True).click()

    outcome = dialog.locator("#transfer-outcome[data-status=completed]")
    outcome.wait_for()
    assert "Lee Chen (consultative)" in outcome.inner_text()
    page.locator("#call[data-state=terminated]").wait_for()
    assert page.errors == []


def test_a_join_by_short_link_shows_its_progress_live_and_a_second_join_asks_first(
    open_page: Any, bot: RunningEmulator, artifacts: Path
) -> None:
    meeting = bot.control(
        "POST", "/meetings", {"subject": "Vendor sync", "passcodeRequired": True}
    )
    link = (
        f"https://teams.microsoft.com/meet/{meeting['joinMeetingId']}"
        f"?p={meeting['passcode']}"
    )
    page = open_page("bob")
    page.get_by_role("link", name="Join a meeting").click()
    page.get_by_label("Teams join link").fill(link)
    page.screenshot(path=artifacts / "join-meeting-form.png")
    page.get_by_role("button", name="Join", exact=True).click()

    page.wait_for_url(re.compile(r"/meetings/\d+/$"))
    page.wait_for_selector("body[data-live=connected]")
    # No reload: the join's call appears and is established through the socket.
    page.locator("#join-progress", has_text="Joined").wait_for()
    page.locator("#meeting-call-rows tr[data-state=established]").wait_for()
    page.screenshot(path=artifacts / "meeting-joined-live.png", full_page=True)

    page.get_by_role("navigation").get_by_role("link", name="Meetings").click()
    page.get_by_role("link", name="Join a meeting now").click()
    page.get_by_label("Teams join link").fill(link)
    page.get_by_role("button", name="Join", exact=True).click()
    page.locator("#join-again", has_text="already in this meeting").wait_for()
    page.screenshot(path=artifacts / "meeting-join-again.png")
    page.get_by_role("button", name="Join again").click()
    page.wait_for_url(re.compile(r"/meetings/\d+/$"))
    page.locator("#meeting-call-rows tr[data-state=established]").nth(1).wait_for()
    assert page.errors == []


def test_a_join_done_before_its_page_opens_still_says_joined(
    open_page: Any, bot: RunningEmulator, server: CallbotServer
) -> None:
    """Teams may establish the join before the meeting's page has rendered (a busy
    server, a slow browser): the page then starts from an established call and
    no change of state ever arrives, yet it must still say the bot has joined."""
    meeting = bot.control("POST", "/meetings", {"subject": "Stand-up"})
    link = (
        f"https://teams.microsoft.com/meet/{meeting['joinMeetingId']}"
        f"?p={meeting['passcode']}"
    )
    page = open_page("bob")
    # The same session as the page's, to read the meeting's page beside it.
    http = httpx.Client(
        base_url=server.url,
        cookies={c["name"]: c["value"] for c in page.context.cookies()},
    )

    def established_first(route: Any) -> None:
        # The join's answer (a redirect to the meeting's page) is held until
        # Callbot renders that page with the call established.
        answer = route.fetch(max_redirects=0)
        meeting_page = answer.headers["location"]
        wait_until(
            lambda: 'data-state="established"' in http.get(meeting_page).text,
            timeout=15,
            interval=0.1,
        )
        route.fulfill(response=answer)

    page.get_by_role("link", name="Join a meeting").click()
    page.get_by_label("Teams join link").fill(link)
    page.route(re.compile(r"/meetings/join/$"), established_first)
    page.get_by_role("button", name="Join", exact=True).click()

    page.wait_for_url(re.compile(r"/meetings/\d+/$"))
    page.wait_for_selector("body[data-live=connected]")
    expect(page.locator("#join-progress")).to_have_text(
        re.compile(r"^Joined \(call \d+\): the bot is in the meeting\.$"),
        timeout=10_000,
    )
    http.close()
    assert page.errors == []


def test_a_stale_row_does_not_move_a_joined_call_backwards(
    open_page: Any, bot: RunningEmulator
) -> None:
    """A board row no newer than the meeting page's (a snapshot part read before a
    delta that overtook it) is ignored: the page keeps saying the bot has joined
    instead of going back to "Joining"."""
    meeting = bot.control("POST", "/meetings", {"subject": "Retro"})
    link = (
        f"https://teams.microsoft.com/meet/{meeting['joinMeetingId']}"
        f"?p={meeting['passcode']}"
    )
    page = open_page("bob")
    sockets: list[Any] = []

    def through(ws: Any) -> None:
        # The page's socket, passed through to the server; the test may add frames.
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/"), through)
    page.get_by_role("link", name="Join a meeting").click()
    page.get_by_label("Teams join link").fill(link)
    page.get_by_role("button", name="Join", exact=True).click()
    page.wait_for_url(re.compile(r"/meetings/\d+/$"))
    progress = page.locator("#join-progress")
    expect(progress).to_have_text(re.compile(r"^Joined \(call \d+\)"), timeout=15_000)
    row = page.locator("#meeting-call-rows tr[data-state=established]").first
    call_id = int(row.get_attribute("data-call-id") or 0)

    # Every text the progress line shows from now on, in order.
    page.evaluate(
        """() => {
            window.__progress = [];
            const node = document.getElementById("join-progress");
            new MutationObserver(() => window.__progress.push(node.textContent))
                .observe(node, {childList: true, characterData: true, subtree: true});
        }"""
    )
    wait_until(lambda: bool(sockets), timeout=5)
    stale = {"id": call_id, "version": 1, "state": "establishing"}
    newer = {"id": call_id, "version": 10_000, "state": "terminated", "result": "gone"}
    for row in (stale, newer):  # the newer one shows that the stale one was read
        sockets[-1].send(json.dumps({"type": "calls.delta", "call": row}))

    expect(progress).to_have_text(f"Call {call_id} ended: gone")
    assert page.evaluate("window.__progress") == [f"Call {call_id} ended: gone"]
    assert page.errors == []
