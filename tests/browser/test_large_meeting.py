"""A 1,000-person meeting in Chromium: the roster renders whole and keeps up with
churn without freezing the page (incremental DOM updates, one pass per frame).

Frame times are measured in the page with requestAnimationFrame while people join,
mute and leave; the figures are written to the test-artifacts directory.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.browser

PEOPLE = 1000
CHURN = 300

FRAME_PROBE = """() => {
    window.frameTimes = [];
    window.longTasks = [];
    let last = performance.now();
    const step = (now) => {
        window.frameTimes.push(now - last);
        last = now;
        if (!window.stopFrames) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
    new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) window.longTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: false });
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_a_thousand_person_meeting_renders_and_keeps_up_with_churn(
    open_page: Any, start_meeting: Any, emulator: RunningEmulator, artifacts: Path
) -> None:
    rng = random.Random(7)
    meeting = start_meeting("Town hall", [])
    page = open_page("bob")
    page.locator("#board-rows tr", has_text="Town hall").get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    present: dict[str, str] = {}
    http = emulator.http()

    def join(name: str) -> None:
        response = http.post(
            f"/_emulator/meetings/{meeting.id}/participants",
            json={"user": {"displayName": name}},
        )
        present[response.json()["participantId"]] = name

    for i in range(PEOPLE):
        join(f"Attendee {i:04d}")
    page.locator("#roster-count", has_text=str(PEOPLE + 1)).wait_for(timeout=60_000)
    assert page.locator("#roster-rows [role=row]").count() == PEOPLE + 1

    # Let the first layout of the whole roster finish before measuring churn.
    page.evaluate(
        "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
    )
    page.evaluate(FRAME_PROBE)
    muted: set[str] = set()
    for i in range(CHURN):
        roll = rng.random()
        pid = rng.choice(list(present))
        if roll < 0.5:
            http.patch(
                f"/_emulator/meetings/{meeting.id}/participants/{pid}",
                json={"muted": True},
            )
            muted.add(pid)
        elif roll < 0.75:
            http.delete(f"/_emulator/meetings/{meeting.id}/participants/{pid}")
            present.pop(pid)
            muted.discard(pid)
        else:
            join(f"Latecomer {i:04d}")
    emulator.wait_idle(timeout=60)
    page.locator("#roster-count", has_text=str(len(present) + 1)).wait_for(
        timeout=60_000
    )
    page.locator("#f-muted", has_text=str(len(muted))).wait_for(timeout=30_000)
    frames: list[float] = page.evaluate("window.stopFrames = true; window.frameTimes")
    long_tasks: list[float] = page.evaluate("window.longTasks")

    assert page.locator("#roster-rows [data-muted=true]").count() == len(muted)
    # Deltas only: no snapshot after the first one.
    assert page.locator("#call").get_attribute("data-snapshots") == "1"
    figures = {
        "people": PEOPLE,
        "churn_events": CHURN,
        "frames": len(frames),
        "frame_ms_p50": round(percentile(frames, 0.5), 1),
        "frame_ms_p95": round(percentile(frames, 0.95), 1),
        "frame_ms_max": round(max(frames), 1),
        "long_tasks": len(long_tasks),
        "long_task_ms_max": round(max(long_tasks, default=0.0), 1),
    }
    (artifacts / "large-meeting-frames.json").write_text(json.dumps(figures, indent=2))
    page.screenshot(path=artifacts / "call-1000-people.png")
    # Never frozen: no frame near half a second (figures seen on a quiet machine:
    # p95 33-50 ms, max 60-80 ms). The p95 is written down, not asserted: on a
    # busy machine headless Chromium may paint only a dozen frames during the
    # churn, and then the p95 is the slowest of them.
    assert figures["frame_ms_max"] < 500, figures
