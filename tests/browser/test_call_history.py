"""An auditor opens an ended call: the roster as it was, who muted whom, and the
recording, which plays and seeks in the page's audio element."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer, keep_recording
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.browser


def test_an_auditor_reads_an_ended_call_and_plays_its_recording(
    open_page: Any, start_meeting: Any, server: CallbotServer, artifacts: Path
) -> None:
    supervisor = open_page("bob")
    meeting = start_meeting("Quarterly audit", ["Ana Lopez", "Lee Chen"])
    supervisor.locator("#board-rows tr", has_text="Quarterly audit").get_by_role(
        "link"
    ).click()
    supervisor.wait_for_selector("body[data-live=connected]")
    lee = supervisor.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Lee Chen']}']"
    )
    lee.get_by_role("button", name="Mute").click()
    supervisor.wait_for_selector(
        f"#roster-rows [data-participant-id='{meeting.people['Lee Chen']}'][data-muted=true]"
    )
    supervisor.once("dialog", lambda dialog: dialog.accept())
    supervisor.locator("#controls").get_by_role("button", name="Hang up").click()
    supervisor.locator("#f-state", has_text="terminated").wait_for()
    # Nothing is left to do on an ended call: one line instead of the controls.
    supervisor.locator("#controls-ended").wait_for()
    assert supervisor.locator("#controls").is_hidden()
    call_url = supervisor.url.split("#")[0].split("?")[0]
    call_pk = int(re.findall(r"/calls/(\d+)/", call_url)[0])
    keep_recording(server, call_pk)

    page = open_page("carol")
    page.goto(call_url)
    page.wait_for_selector("body[data-live=connected]")

    # The live roster of an ended call is empty; the roster as it was is not.
    assert page.locator("#live-parts").is_hidden()
    roster = page.locator("#roster-history")
    assert roster.get_by_role("heading").inner_text().startswith("Roster as it was")
    names = roster.locator("tbody th").all_inner_texts()
    assert {"Ana Lopez", "Lee Chen"} <= {n.strip() for n in names}
    lee_row = roster.locator("tbody tr", has_text="Lee Chen")
    assert "muted by bob" in lee_row.inner_text()
    assert "present" not in lee_row.locator("td").nth(2).inner_text()
    history = page.locator("#history-timeline")
    history.locator("li.t-roster", has_text="Lee Chen muted by bob").wait_for()
    mute = history.locator("li.t-action", has_text="Mute Participant")
    assert mute.count() == 1
    assert mute.locator(".actor").inner_text() == "bob"
    assert mute.locator(".status").inner_text() == "completed"
    raw = history.locator("li.t-notification details.raw").first
    raw.locator("summary").click()
    assert '"resourceUrl"' in raw.locator("pre").inner_text()

    audio = history.locator("li.t-recording audio")
    audio.scroll_into_view_if_needed()
    played = audio.evaluate(
        """async (a) => {
            if (a.readyState < 1) await new Promise((ok, no) => {
                a.addEventListener("loadedmetadata", ok, {once: true});
                a.addEventListener("error", () => no(new Error("audio error")), {once: true});
            });
            const seeked = new Promise((ok) => a.addEventListener("seeked", ok, {once: true}));
            a.currentTime = 1.5;
            await seeked;
            return {duration: a.duration, at: a.currentTime,
                    seekable: a.seekable.length ? a.seekable.end(0) : 0};
        }"""
    )
    assert played["duration"] == pytest.approx(2.0, abs=0.05)
    assert played["at"] == pytest.approx(1.5, abs=0.05)
    # Chromium offers the whole file as seekable only when the server takes ranges.
    assert played["seekable"] == pytest.approx(2.0, abs=0.05)
    page.screenshot(path=artifacts / "call-ended-auditor.png", full_page=True)

    # Hearing it is in the call's audit trail.
    page.goto(f"{call_url}?latest=1")
    page.locator(
        "#history-timeline li.t-audit", has_text="carol: recording.play"
    ).first.wait_for()

    # At phone width an ended call shows no "waiting for a person" panel: the
    # hidden attribute wins over the panel's own display.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(call_url)
    page.wait_for_selector("body[data-live=connected]")
    page.screenshot(path=artifacts / "call-ended-390.png", full_page=True)
    assert page.locator("#f-state").get_attribute("data-state") == "terminated"
    assert page.locator("#waiting").is_hidden()
    assert page.errors == []


def test_everyone_so_far_follows_people_joining_and_leaving_live(
    open_page: Any, start_meeting: Any, emulator: RunningEmulator
) -> None:
    meeting = start_meeting("Live roster", ["Ana Lopez"])
    page = open_page("bob")
    page.locator("#board-rows tr", has_text="Live roster").get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    everyone = page.locator("#roster-history")
    assert everyone.get_by_role("heading").inner_text().startswith("Everyone so far")

    lee_id = emulator.control(
        "POST",
        f"/meetings/{meeting.id}/participants",
        {"user": {"displayName": "Lee Chen"}},
    )["participantId"]
    page.locator(f"#roster-rows [data-participant-id='{lee_id}']").wait_for()
    lee = everyone.locator(f"tbody tr[data-participant-id='{lee_id}']")
    lee.wait_for()  # without a reload
    assert lee.locator("th").inner_text() == "Lee Chen"
    assert lee.locator("td").nth(0).inner_text() == "User"
    assert lee.locator("td").nth(2).inner_text() == "present"

    emulator.control("DELETE", f"/meetings/{meeting.id}/participants/{lee_id}")
    lee.locator("td").nth(2).locator("time").wait_for()
    assert "present" not in lee.locator("td").nth(2).inner_text()
    assert page.errors == []
