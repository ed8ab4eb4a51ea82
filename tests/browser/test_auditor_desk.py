"""The auditor's desk end to end, in the issue's words: an auditor finds
yesterday's call by a participant's name, opens it, sees the roster as it was and
who muted whom, plays the recording, exports the history as CSV and opens the
file; the audit page shows a supervisor's mute with its outcome.

The call is real: the emulator's people join a meeting, Bob (supervisor) mutes one
of them from the call page (over the socket, so the trail holds his request and
its outcome) and hangs up. The server's database then moves the call a day back,
the way the browser fixtures seed data; audit entries stay as written, since the
hash chain covers their times.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer, LiveMeeting, keep_recording

pytestmark = pytest.mark.browser

SUBJECT = "Vendor dispute review"
PEOPLE = ["Priya Natarajan", "Tom Becker"]

# Runs in the server's environment: every time of the call and its rows one day
# earlier, as if it had happened yesterday.
MOVE_BACK_A_DAY = """
from datetime import timedelta
from django.db.models import F
from callbot.calls.models import (
    Action, Call, CallEvent, Participant, ParticipantChange, Recording,
)
from callbot.ivr.models import IvrSession
day = timedelta(days=1)
def back(rows, *names):
    rows.update(**{name: F(name) - day for name in names})
back(Call.objects.filter(pk={call_pk}), "created_at", "established_at",
     "terminated_at", "last_notification_at", "last_keep_alive_at")
back(Participant.objects.filter(call_id={call_pk}), "joined_at", "left_at")
back(CallEvent.objects.filter(call_id={call_pk}), "received_at")
back(Action.objects.filter(call_id={call_pk}), "created_at", "sent_at", "completed_at")
back(ParticipantChange.objects.filter(call_id={call_pk}), "at")
back(Recording.objects.filter(call_id={call_pk}), "created_at")
back(IvrSession.objects.filter(call_id={call_pk}), "created_at", "deadline")
"""


def _supervisor_mutes_and_hangs_up(supervisor: Any, meeting: LiveMeeting) -> int:
    """Bob mutes Tom from the call page and hangs up; the call's id."""
    supervisor.locator("#board-rows tr", has_text=SUBJECT).get_by_role("link").click()
    supervisor.wait_for_selector("body[data-live=connected]")
    tom = f"#roster-rows [data-participant-id='{meeting.people['Tom Becker']}']"
    supervisor.locator(tom).get_by_role("button", name="Mute").click()
    supervisor.wait_for_selector(f"{tom}[data-muted=true]")
    supervisor.once("dialog", lambda dialog: dialog.accept())
    supervisor.locator("#controls").get_by_role("button", name="Hang up").click()
    supervisor.locator("#f-state", has_text="terminated").wait_for()
    return int(re.findall(r"/calls/(\d+)/", supervisor.url)[0])


def test_an_auditor_finds_hears_exports_and_traces_yesterdays_call(
    open_page: Any,
    start_meeting: Any,
    server: CallbotServer,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    supervisor = open_page("bob")
    meeting = start_meeting(SUBJECT, PEOPLE)
    call_pk = _supervisor_mutes_and_hangs_up(supervisor, meeting)
    keep_recording(server, call_pk)
    server.manage("shell", "-c", MOVE_BACK_A_DAY.replace("{call_pk}", str(call_pk)))

    # Find yesterday's call by a participant's name.
    page = open_page("carol")
    page.get_by_role("link", name="History", exact=True).click()
    page.fill("#id_q", "natarajan")
    page.select_option("#id_period", "yesterday")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/history/?*period=yesterday*")
    rows = page.locator("table.history tbody tr")
    assert rows.count() == 1
    row = rows.first
    assert row.get_attribute("data-call-id") == str(call_pk)
    assert SUBJECT in row.inner_text()
    assert page.locator("#match-count").inner_text() == "1 call matches"
    page.screenshot(path=artifacts / "desk-history.png", full_page=True)
    history_url = page.url

    # Open it: the roster as it was, and who muted whom.
    row.get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    assert page.url.startswith(f"{server.url}/calls/{call_pk}/")
    roster = page.locator("#roster-history")
    names = {n.strip() for n in roster.locator("tbody th").all_inner_texts()}
    assert set(PEOPLE) <= names
    assert (
        "muted by bob" in roster.locator("tbody tr", has_text="Tom Becker").inner_text()
    )
    assert (
        "muted"
        not in roster.locator("tbody tr", has_text="Priya Natarajan").inner_text()
    )
    timeline = page.locator("#history-timeline")
    timeline.locator("li.t-roster", has_text="Tom Becker muted by bob").wait_for()

    # Play the recording to its end (muted: headless Chromium plays without a
    # gesture only then), and the play is in the trail.
    audio = timeline.locator("li.t-recording audio")
    audio.scroll_into_view_if_needed()
    played = audio.evaluate(
        """async (a) => {
            a.muted = true;
            const ended = new Promise((ok, no) => {
                a.addEventListener("ended", ok, {once: true});
                a.addEventListener("error", () => no(new Error("audio error")), {once: true});
            });
            await a.play();
            await ended;
            return {duration: a.duration, at: a.currentTime};
        }"""
    )
    assert played["duration"] == pytest.approx(2.0, abs=0.05)
    assert played["at"] == pytest.approx(played["duration"], abs=0.05)
    page.screenshot(path=artifacts / "desk-call.png", full_page=True)

    # Export the found calls as CSV through the browser and read the file.
    page.goto(history_url)
    with page.expect_download() as downloading:
        page.get_by_role("link", name="CSV").click()
    download = downloading.value
    assert re.fullmatch(r"call-history-\d{8}-\d{6}\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with saved.open(newline="", encoding="utf-8") as file:
        exported = list(csv.DictReader(file))
    assert [r["id"] for r in exported] == [str(call_pk)]
    call = exported[0]
    assert call["subject"] == SUBJECT
    assert call["outcome"] == "answered"
    assert int(call["participants"]) >= len(PEOPLE)
    assert "mute_participant" in call["actions"].split(", ")
    assert "bob" in call["actors"].split(", ")
    assert call["recordings"] == "1"
    # In the viewer's zone, with its offset: yesterday there.
    started = datetime.fromisoformat(call["started_at"])
    assert started.date() == datetime.now(started.tzinfo).date() - timedelta(days=1)

    # The audit page: Bob's mute, requested and completed, the outcome pointing
    # at its request; and Carol's play and export beside it.
    page.get_by_role("link", name="Audit", exact=True).click()
    page.fill("#id_actor", "bob")
    page.select_option("#id_action", "mute_participant")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit/?*action=mute_participant*")
    entries = page.locator("table.audit tbody tr")
    assert entries.count() == 2
    done, asked = entries.nth(0), entries.nth(1)
    assert "requested" in asked.inner_text()
    assert "completed" in done.inner_text()
    request_no = asked.locator("td").first.inner_text().strip()
    assert f"outcome of #{request_no}" in done.inner_text()
    assert f"call {call_pk}" in done.inner_text()
    page.screenshot(path=artifacts / "desk-audit.png", full_page=True)
    page.fill("#id_actor", "carol")
    page.select_option("#id_action", "")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit/?*actor=carol*")
    mine = page.locator("table.audit tbody")
    played_entry = mine.locator("tr", has_text="recording.play").first
    assert f"call {call_pk}" in played_entry.inner_text()
    exported_entry = mine.locator("tr", has_text="export.history").first
    assert "rows: 1" in exported_entry.inner_text()
    exported_entry.locator("summary", has_text="JSON").click()  # the exact detail
    assert '"rows": 1' in exported_entry.inner_text()
    assert page.errors == []
    assert supervisor.errors == []
