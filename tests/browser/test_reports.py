"""The reports page in headless Chromium, light and dark, over generated calls.

The charts are SVG coloured by the theme's CSS variables: a column is drawn in each
theme's accent colour, no Content-Security-Policy violation occurs (the fixture
checks), and a chart's numbers open with one click. Screenshots go to the
test-artifacts directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_calls(server: CallbotServer) -> None:
    """A month of ended calls (none live, so the board of other tests is as it was)."""
    server.manage(
        "shell",
        "-c",
        "from bench.reports import generate; generate(1500, 30, live=False)",
    )


@pytest.mark.parametrize(
    ("scheme", "accent"),
    [("light", "rgb(37, 83, 184)"), ("dark", "rgb(76, 130, 247)")],
)
def test_the_reports_page_draws_its_charts_in_the_viewers_theme(
    demo_calls: None,
    open_page: Any,
    server: CallbotServer,
    artifacts: Path,
    scheme: str,
    accent: str,
) -> None:
    page = open_page("carol", color_scheme=scheme)
    response = page.goto(f"{server.url}/reports/?preset=30d")
    assert response.status == 200

    columns = page.locator("#report-calls_over_time svg.chart rect.col")
    assert columns.count() == 30
    fill = columns.first.evaluate("rect => getComputedStyle(rect).fill")
    assert fill == accent
    assert page.locator("#report-outcomes .bars li").count() == 5
    page.screenshot(path=artifacts / f"reports-{scheme}.png", full_page=True)

    numbers = page.locator("#report-outcomes details.numbers")
    assert not numbers.locator("table").is_visible()
    numbers.locator("summary").click()
    assert numbers.locator("tbody tr").first.inner_text().startswith("Answered")
    assert page.errors == []
