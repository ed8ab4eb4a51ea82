"""Supervisors' awareness in the browser: two supervisors on one call page see
each other and each other's acts (and a clash on the same person); a call
ringing too long raises an alert on the board. Screenshots of the board with its
KPI strip and an alert, at desktop width and at phone width (390 px)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.browser

# Records notifications the page shows (headless Chromium shows none).
_RECORD_NOTIFICATIONS = """
window.__notes = [];
const Real = window.Notification;
class Recorded extends Real {
  constructor(title, options) { super(title, options); window.__notes.push(title); }
}
window.Notification = Recorded;
"""


def open_call(page: Any, subject: str) -> None:
    page.locator("#board-rows tr", has_text=subject).get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")


def test_two_supervisors_see_each_other_and_each_others_acts(
    open_page: Any, start_meeting: Any, artifacts: Path
) -> None:
    bob = open_page("bob")
    alice = open_page("alice")
    meeting = start_meeting("Shared watch", ["Ana Lopez", "Lee Chen"])
    open_call(bob, "Shared watch")
    open_call(alice, "Shared watch")

    bob.locator("#watchers .who-chip", has_text="alice").wait_for()
    alice.locator("#watchers .who-chip", has_text="bob").wait_for()
    assert "bob" not in bob.locator("#watchers").inner_text()
    assert alice.locator("#recent-acts li").all_inner_texts() == [
        "None since this page opened."
    ]

    ana = f"#roster-rows [data-participant-id='{meeting.people['Ana Lopez']}']"
    bob.locator(ana).get_by_role("button", name="Mute").click()
    alice.locator(
        "#recent-acts li", has_text="bob: Mute Participant → Ana Lopez"
    ).wait_for()
    assert alice.locator("#recent-acts li.none").count() == 0
    bob.locator(
        "#recent-acts li", has_text="you: Mute Participant → Ana Lopez"
    ).wait_for()
    # Bob's outcome is his own feedback, not Alice's: her line says nothing of it.
    bob.locator("#action-feedback", has_text="Mute Participant → Ana Lopez").wait_for()
    alice.locator(f"{ana} .row-status").wait_for(state="attached")
    assert "Ana Lopez" not in alice.locator("#action-feedback").inner_text()

    # Alice acts on Ana moments later: both are told, each naming the other.
    alice.locator(ana).get_by_role("button", name="Hold").click()
    alice.locator("#act-clash", has_text="bob").wait_for()
    bob.locator("#act-clash", has_text="alice").wait_for()
    assert "Ana Lopez" in bob.locator("#act-clash").inner_text()
    bob.screenshot(path=artifacts / "call-presence-clash.png", full_page=True)

    # Alice leaves the call page: Bob's page says so.
    alice.goto(alice.url.split("/calls/")[0] + "/")
    bob.locator("#watchers", has_text="nobody else").wait_for()
    assert bob.errors == []
    assert alice.errors == []


@pytest.fixture
def ringing_calls_wait(server: CallbotServer) -> Iterator[None]:
    """Peer-to-peer calls ring unanswered (no policy answers them) and ring too
    long after one second; put back afterwards."""
    policies = "from callbot.ivr.models import CallPolicy as P; q = P.objects.filter(call_kinds='peer_to_peer'); "
    settings = "from callbot.calls.alertmodels import AlertSettings as S; "
    server.manage(
        "shell",
        "-c",
        policies
        + "q.update(enabled=False); "
        + settings
        + "S(ringing_seconds=1).save()",
    )
    yield
    server.manage(
        "shell",
        "-c",
        policies + "q.update(enabled=True); " + settings + "S().save()",
    )


@pytest.mark.usefixtures("ringing_calls_wait")
def test_a_supervisor_is_alerted_to_a_call_ringing_too_long(
    open_page: Any,
    start_meeting: Any,
    emulator: RunningEmulator,
    server: CallbotServer,
    artifacts: Path,
) -> None:
    start_meeting("Ops standup", ["Ana Lopez", "Lee Chen", "Sam Ode"])
    page = open_page("bob")
    page.context.grant_permissions(["notifications"], origin=server.url)
    page.context.add_init_script(_RECORD_NOTIFICATIONS)
    page.reload()
    page.wait_for_selector("body[data-live=connected]")
    page.click("#notify-toggle")
    page.locator("#notify-toggle", has_text="Notifications: on").wait_for()

    emulator.control(
        "POST", "/calls/incoming", {"from": {"user": {"displayName": "Rita Ringer"}}}
    )
    row = page.locator("#board-rows tr", has_text="Rita Ringer")
    row.locator("[data-state=incoming]").wait_for()
    # The strip follows the ringing list as it changes, not at the next pulse:
    # the moment Rita's card is drawn, the tile counts the cards.
    cards, tile = page.wait_for_function(
        """() => {
            const cards = [...document.querySelectorAll('#ringing .ring-card')];
            const tile = document.querySelector('#kpis [data-kpi=ringing] .v');
            return cards.some((c) => c.textContent.includes('Rita Ringer'))
                && [cards.length, tile.textContent];
        }"""
    ).json_value()
    assert tile == str(cards)
    # Beat's sweep, as the worker would run it every ALERT_SWEEP_SECONDS, until
    # the call has rung past the one-second threshold and the sweep raises it.
    # It runs in another process, so the page hears of it by the board's pulse
    # (BOARD_PULSE_SECONDS) rather than at once.
    sweep = "from callbot.calls.alerts import evaluate_alerts; print(evaluate_alerts())"
    raised = ""
    for _ in range(5):
        raised = server.manage("shell", "-c", sweep)
        if "ringing_long" in raised:
            break
        time.sleep(0.5)
    assert "ringing_long" in raised, raised

    alert = page.locator(
        "#alert-list li[data-kind=ringing_long]", has_text="Rita Ringer"
    )
    alert.wait_for(timeout=30_000)
    assert "nobody has answered" in alert.inner_text()
    assert page.locator("#alerts").is_visible()
    page.wait_for_function("window.__notes.length > 0")
    assert page.evaluate("window.__notes") == ["Call ringing too long: Rita Ringer"]
    # The meeting (and any call an earlier test left live) is connected.
    assert int(page.locator("#kpis [data-kpi=active] .v").inner_text()) >= 1
    page.screenshot(path=artifacts / "board-alert-desktop.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=artifacts / "board-alert-390.png", full_page=True)
    assert width <= 390, "the board scrolls sideways at phone width"
    assert page.errors == []


def test_the_board_filters_in_the_url_and_answers_the_keyboard(
    open_page: Any, start_meeting: Any
) -> None:
    start_meeting("Keyboard drill", ["Ana Lopez"])
    page = open_page("bob")
    row = page.locator("#board-rows tr", has_text="Keyboard drill")
    row.wait_for()

    page.keyboard.press("?")
    assert page.locator("#keys-help").is_visible()
    assert "mute the selected person" in page.locator("#keys-help").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#keys-help").is_visible()

    page.keyboard.press("/")
    page.keyboard.type("no such call")  # typed into the filter, not taken as keys
    page.locator("#board-none-match").wait_for()
    assert row.is_hidden()
    assert "q=no+such+call" in page.url
    page.reload()
    page.wait_for_selector("body[data-live=connected]")
    assert page.input_value("#board-filter") == "no such call"

    page.fill("#board-filter", "drill")
    row.wait_for()
    page.keyboard.press("Escape")  # leaves the filter
    page.keyboard.press("j")
    page.locator("#board-rows tr.selected", has_text="Keyboard drill").wait_for()
    page.keyboard.press("Enter")
    page.wait_for_url("**/calls/*/")
    page.locator("#call-title", has_text="Keyboard drill").wait_for()
    assert page.errors == []
