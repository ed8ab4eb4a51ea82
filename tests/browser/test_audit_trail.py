"""The auditor's desk in a browser: Carol opens the audit trail from the nav,
filters it to the bot's acts, and follows an entry to its call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_an_auditor_reads_the_trail_and_follows_an_entry_to_its_call(
    open_page: Any, start_meeting: Any, artifacts: Path
) -> None:
    start_meeting("Audit desk", ["Sam Ortiz", "Ana Lima"])
    page = open_page("carol")
    page.get_by_role("link", name="Audit", exact=True).click()
    page.wait_for_selector("table.audit tbody tr")
    assert page.get_by_role("link", name="Audit", exact=True).get_attribute(
        "aria-current"
    ) == ("page")
    # Carol's own sign-in is the newest entry.
    first = page.locator("table.audit tbody tr").first
    assert "carol" in first.inner_text()
    assert "sign_in" in first.inner_text()
    page.screenshot(path=artifacts / "audit-auditor.png", full_page=True)

    page.fill("#id_actor", "callbot")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/audit/?*actor=callbot*")
    rows = page.locator("table.audit tbody tr")
    assert rows.count() >= 1
    for text in rows.all_inner_texts():
        assert "callbot" in text
    assert (
        page.get_by_role("link", name="CSV")
        .get_attribute("href")
        .endswith("actor=callbot&by=&action=&outcome=&call=&since=&until=")
    )
    rows.locator("a[href^='/calls/']").first.click()
    page.wait_for_selector("body[data-live=connected]")
    assert "/calls/" in page.url
    assert page.errors == []
