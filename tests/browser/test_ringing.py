"""Ringing calls in the browser, as on a real tenant (no policy decides peer-to-peer
calls): a supervisor answers one into the operator flow, rejects one, and redirects
one, each before Graph's answer deadline. Screenshots go to the test-artifacts
directory, including the board at a phone's width."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CallbotServer
from tests.support.emulator import RunningEmulator, wait_until

# The first test here may pay for starting the session's server on a busy machine.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

DESK_ID = "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"


@pytest.fixture
def undecided(server: CallbotServer, emulator: RunningEmulator) -> Iterator[None]:
    """The demo policy for peer-to-peer calls off, and one saved redirect target."""
    emulator.reset(f"{server.url}/api/calling/callback")
    server.manage(
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; "
        "from callbot.calls.models import RedirectTarget; "
        "CallPolicy.objects.filter(call_kinds='peer_to_peer').update(enabled=False); "
        "RedirectTarget.objects.get_or_create(name='Service desk', "
        f"defaults={{'kind': 'user', 'value': '{DESK_ID}'}})",
    )
    yield
    server.manage(
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; "
        "CallPolicy.objects.filter(call_kinds='peer_to_peer').update(enabled=True)",
    )


def ring(emulator: RunningEmulator, name: str) -> str:
    call_id: str = emulator.control(
        "POST", "/calls/incoming", {"from": {"user": {"displayName": name}}}
    )["callId"]
    return call_id


def card(page: Any, name: str) -> Any:
    found = page.locator("#ringing .ring-card", has_text=name)
    found.locator(".deadline", has_text="s to answer").wait_for()
    return found


def state_of(emulator: RunningEmulator, call_id: str) -> str:
    return str(emulator.control("GET", f"/calls/{call_id}")["state"])


def events(emulator: RunningEmulator) -> str:
    return str(emulator.control("GET", "/events"))


@pytest.mark.usefixtures("undecided")
def test_a_supervisor_answers_a_ringing_call_into_the_operator_flow(
    open_page: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = ring(emulator, "Ana Lopez")

    ana = card(page, "Ana Lopez")
    assert ana.locator(".rang").inner_text().startswith("rang ")
    assert ana.locator("select[name=flow] option:checked").inner_text() == "operator"
    page.screenshot(path=artifacts / "board-ringing-supervisor.png")
    ana.locator("button[data-kind=answer]").click()

    # Answered into the flow: the bot answers, then listens for the menu's keys.
    wait_until(lambda: state_of(emulator, call_id) == "established", timeout=10)
    wait_until(
        lambda: emulator.control("GET", f"/calls/{call_id}")["toneSubscribed"],
        timeout=10,
    )
    ana.wait_for(state="detached")
    # Other tests' calls on the shared server may have the same caller.
    row = page.locator(f'#board-rows tr[data-call-id] a[title="{call_id}"]')
    row.wait_for()
    assert page.errors == []


@pytest.mark.usefixtures("undecided")
def test_a_supervisor_rejects_a_ringing_call(
    open_page: Any, emulator: RunningEmulator
) -> None:
    page = open_page("bob")
    call_id = ring(emulator, "Lee Chen")

    lee = card(page, "Lee Chen")
    lee.locator("select[name=reason]").select_option("busy")
    lee.locator("button[data-kind=reject]").click()

    wait_until(lambda: state_of(emulator, call_id) == "terminated", timeout=10)
    assert f"bot rejected call {call_id} (busy)" in events(emulator)
    lee.wait_for(state="detached")
    assert page.errors == []


@pytest.mark.usefixtures("undecided")
def test_a_supervisor_redirects_a_ringing_call_from_its_page(
    open_page: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = ring(emulator, "Kim Park")
    card(page, "Kim Park").locator("a.caller").click()
    page.wait_for_selector("body[data-live=connected]")

    kim = card(page, "Kim Park")
    assert kim.locator("select[name=saved_target] option:checked").inner_text() == (
        "Service desk (Teams)"
    )
    page.screenshot(path=artifacts / "call-ringing-supervisor.png")
    kim.locator("button[data-kind=redirect]").click()

    wait_until(lambda: state_of(emulator, call_id) == "terminated", timeout=10)
    assert f"bot redirected call {call_id}" in events(emulator)
    page.locator("#f-state[data-state=terminated]").wait_for()
    assert page.errors == []


@pytest.mark.usefixtures("undecided")
def test_the_ringing_board_fits_a_phone(
    open_page: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    page.set_viewport_size({"width": 390, "height": 844})
    call_id = ring(emulator, "Ana Lopez")

    ana = card(page, "Ana Lopez")
    page.screenshot(path=artifacts / "board-ringing-390.png", full_page=True)
    # Nothing makes the page scroll sideways (the board's table scrolls in its box),
    # and every control is on screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    box = ana.bounding_box()
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    for kind in ("answer", "reject", "redirect"):
        assert ana.locator(f"button[data-kind={kind}]").is_visible()
    ana.locator("select[name=reason]").select_option("none")
    ana.locator("button[data-kind=reject]").click()
    wait_until(lambda: state_of(emulator, call_id) == "terminated", timeout=10)


@pytest.mark.usefixtures("undecided")
def test_a_call_answered_to_hold_waits_on_the_board_until_a_supervisor_takes_it(
    open_page: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = ring(emulator, "Noor Haddad")

    noor = card(page, "Noor Haddad")
    noor.locator("select[name=flow]").select_option("hold")
    noor.locator("button[data-kind=answer]").click()

    row = page.locator("#board-rows tr.waiting", has_text="Noor Haddad")
    row.locator(".waiting-badge", has_text="waiting for a person").wait_for()
    wait_until(lambda: state_of(emulator, call_id) == "established", timeout=10)
    page.screenshot(path=artifacts / "board-waiting-supervisor.png")
    row.locator("button[data-kind=take]").click()

    page.locator("#board-rows tr", has_text="Noor Haddad").and_(
        page.locator("tr:not(.waiting)")
    ).wait_for()
    assert page.locator("#board-rows tr.waiting", has_text="Noor Haddad").count() == 0
    assert page.errors == []
    emulator.control("POST", f"/calls/{call_id}/hangup")


RINGING = "Not while the call rings: answer it first (or reject or redirect it)."


@pytest.mark.usefixtures("undecided")
def test_a_ringing_calls_page_offers_only_answer_reject_and_redirect(
    open_page: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = ring(emulator, "Ines Ferro")
    card(page, "Ines Ferro").locator("a.caller").click()
    page.wait_for_selector("body[data-live=connected]")
    ines = card(page, "Ines Ferro")
    controls = page.locator("#controls")
    controls.locator("[data-kind=invite][data-not-offered=true]").first.wait_for(
        state="attached"
    )

    # Every in-call control is disabled and says why, once, in the panel's list.
    for kind in ("hang_up", "invite", "play_prompt", "transfer"):
        for control in controls.locator(f"[data-kind={kind}]").all():
            assert control.is_disabled(), kind
            assert control.get_attribute("title") == RINGING, kind
    reasons = page.locator("#control-reasons")
    assert reasons.locator("[data-reason-for=play_prompt]").inner_text() == (
        f"Play prompt: {RINGING}"
    )
    line = reasons.locator("[data-reason-for=hang_up]")
    assert (line.bounding_box() or {"height": 99})["height"] < 24
    for kind in ("answer", "reject", "redirect"):
        assert ines.locator(f"button[data-kind={kind}]").is_enabled(), kind
    page.screenshot(path=artifacts / "call-ringing-offers.png", full_page=True)

    ines.locator("select[name=flow]").select_option("")
    ines.locator("button[data-kind=answer]").click()
    wait_until(lambda: state_of(emulator, call_id) == "established", timeout=10)

    # Answered: the in-call controls come back; answering is no longer offered.
    page.locator("#f-state[data-state=established]").wait_for()
    hang_up = controls.locator("[data-kind=hang_up]")
    page.wait_for_function(
        "() => !document.querySelector('#controls [data-kind=hang_up]').disabled"
    )
    assert hang_up.get_attribute("title") in (None, "")
    assert controls.locator("[data-kind=invite]").first.is_enabled()
    assert reasons.locator("[data-reason-for=invite]").count() == 0
    assert page.locator("#ringing").is_hidden()
    assert page.errors == []
    emulator.control("POST", f"/calls/{call_id}/hangup")


@pytest.fixture
def handed_off(server: CallbotServer, undecided: None) -> Iterator[None]:
    """A call policy that hands peer-to-peer calls to the supervisors for 12 s,
    then rejects them (busy)."""
    server.manage(
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; "
        "CallPolicy.objects.create(name='Queue first', match='default', priority=0, "
        "action='supervisors', max_wait_seconds=12, fallback='reject', "
        "reject_reason='busy')",
    )
    yield
    server.manage(
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; "
        "CallPolicy.objects.filter(name='Queue first').delete()",
    )


@pytest.mark.usefixtures("handed_off")
def test_a_handed_off_call_counts_down_to_its_fallback_on_the_board_and_page(
    open_page: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    page = open_page("bob")
    call_id = ring(emulator, "Oskar Lind")

    oskar = card(page, "Oskar Lind")
    limit = oskar.locator(".wait-limit")
    limit.wait_for()
    first = limit.inner_text()
    assert first.startswith("Fallback at ")
    assert first.endswith("s): reject (busy)")
    seconds = int(first.split("(in ")[1].split(" s)")[0])
    # Rounded up, on the page's estimate of the server's clock.
    assert 1 <= seconds <= 13
    row = page.locator(f'#board-rows tr[data-call-id]:has(a[title="{call_id}"])')
    # The row is drawn from its own delta, which may land a moment after the
    # panel's: wait for it to say the same limit (the clock time, the fallback).
    expect(row.locator(".wait-limit")).to_have_text(
        re.compile(
            r"^Fallback at "
            + re.escape(first.split(" (in ")[0][len("Fallback at ") :])
            + r" \(in \d+ s\): reject \(busy\)$"
        ),
        timeout=5000,
    )
    page.screenshot(path=artifacts / "board-handoff-countdown.png")
    # It counts down, second by second.
    page.wait_for_function(
        "(before) => { const t = document.querySelector('#ringing .wait-limit'); "
        "return t && t.textContent !== before; }",
        arg=first,
    )

    oskar.locator("a.caller").click()
    page.wait_for_selector("body[data-live=connected]")
    own = card(page, "Oskar Lind").locator(".wait-limit")
    own.wait_for()
    assert own.inner_text().endswith("reject (busy)")
    assert page.errors == []
    mine = card(page, "Oskar Lind")
    mine.locator("select[name=reason]").select_option("none")
    mine.locator("button[data-kind=reject]").click()
    wait_until(lambda: state_of(emulator, call_id) == "terminated", timeout=10)
