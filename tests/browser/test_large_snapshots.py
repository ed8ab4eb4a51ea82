"""A board of 10,000 live calls and a call of 5,000 people, in Chromium through
daphne: the snapshots arrive in parts no larger than ``PART_CHARS`` (daphne's limit
is 1 MiB, which whole snapshots passed from about 2,300 calls or 3,000 people),
the board counts every call but holds only a screenful of rows in the DOM
(virtualised: filter, sort, scrolling and j/k reach every call), and the call page
shows every person.

The rows are bulk-created in the server's database (``tests/dashboard/crowd.py``
through ``manage.py shell``) and deleted afterwards: the server is shared with the
other browser tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.snapshots import PART_CHARS
from tests.browser.conftest import CallbotServer

pytestmark = pytest.mark.browser

CALLS = 10_000
# The virtualised board's rows in the DOM: the viewport's and its overscan.
MOST_ROWS_IN_DOM = 200
PEOPLE = 5000


@pytest.fixture
def crowd(server: CallbotServer) -> Iterator[dict[str, int]]:
    """The crowd in the server's database: the big call's id and how many live
    calls the board should list (other tests' calls may still be live)."""
    out = server.manage(
        "shell",
        "-c",
        "import json\n"
        "from tests.dashboard import crowd\n"
        "from callbot.calls.models import Call\n"
        f"big = crowd.populate({CALLS}, {PEOPLE})\n"
        "live = Call.objects.exclude(state='terminated').count()\n"
        "print(json.dumps({'big': big, 'live': live}))\n",
    )
    yield json.loads(out.strip().splitlines()[-1])
    server.manage("shell", "-c", "from tests.dashboard import crowd\ncrowd.clear()\n")


ROW_IN_VIEWPORT = """() => [...document.querySelectorAll("#board-rows tr")].some((tr) => {
    const r = tr.getBoundingClientRect();
    return r.top >= 0 && r.bottom <= innerHeight;
})"""


def watch_frames(page: Any) -> list[int]:
    """Sizes of every websocket frame the page receives from now on."""
    sizes: list[int] = []

    def opened(ws: Any) -> None:
        ws.on(
            "framereceived",
            lambda payload: sizes.append(
                len(payload.encode() if isinstance(payload, str) else payload)
            ),
        )

    page.on("websocket", opened)
    return sizes


# Writing 10,000 calls and 5,000 people and loading the board twice takes a while
# on a busy two-core machine.
@pytest.mark.timeout(600)
def test_a_board_of_10000_calls_and_a_call_of_5000_people_arrive_in_bounded_parts(
    open_page: Any,
    server: CallbotServer,
    crowd: dict[str, int],
    artifacts: Path,
) -> None:
    signed_in = open_page("carol")
    page = signed_in.context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sizes = watch_frames(page)

    page.goto(f"{server.url}/")
    page.locator("#call-count", has_text=str(crowd["live"])).wait_for()
    rows = page.locator("#board-rows tr")
    assert 0 < rows.count() <= MOST_ROWS_IN_DOM
    # The page is as tall as every row: the scrollbar says 10,000 calls.
    assert page.evaluate("document.documentElement.scrollHeight") > 100 * 900
    page.screenshot(path=artifacts / "board-10000-calls.png")

    # Scrolled to the middle, the rows there are in the DOM, and still only a few.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
    # (Polled with evaluate: wait_for_function evaluates a string, which the page's
    # Content-Security-Policy refuses.)
    for _ in range(100):
        if page.evaluate(ROW_IN_VIEWPORT):
            break
        page.wait_for_timeout(50)
    else:
        pytest.fail("no row in the viewport after scrolling to the middle")
    assert rows.count() <= MOST_ROWS_IN_DOM
    page.screenshot(path=artifacts / "board-10000-calls-middle.png")

    # The filter reaches a call far from the viewport; j selects it.
    page.evaluate("window.scrollTo(0, 0)")
    page.fill("#board-filter", "Support line 2998")
    row = page.locator("#board-rows tr", has_text="Support line 2998")
    row.wait_for()
    assert rows.count() == 1
    page.locator("#call-count", has_text=f"1 of {crowd['live']}").wait_for()
    # Leave the field (Escape in a search field would also clear it).
    page.locator("#board-filter").blur()
    page.keyboard.press("j")
    page.locator("#board-rows tr.selected", has_text="Support line 2998").wait_for()
    page.fill("#board-filter", "")
    page.locator("#call-count", has_text=str(crowd["live"])).wait_for(state="attached")
    assert rows.count() <= MOST_ROWS_IN_DOM
    board_frames = list(sizes)

    page.locator("#board-rows tr", has_text="Crowded all-hands").get_by_role(
        "link"
    ).click()
    page.wait_for_selector("body[data-live=connected]")
    page.locator("#roster-count", has_text=str(PEOPLE)).wait_for()
    assert page.locator("#roster-rows [role=row]").count() == PEOPLE
    assert page.locator("#f-people").inner_text() == str(PEOPLE)
    assert page.locator("#f-muted").inner_text() == str(PEOPLE // 2)
    assert page.locator("#call").get_attribute("data-snapshots") == "1"
    page.screenshot(path=artifacts / "call-5000-people.png")

    # Every frame under the bound, and the board alone far over what one could hold.
    assert max(sizes) <= PART_CHARS, max(sizes)
    assert sum(board_frames) > 2**20
    (artifacts / "large-snapshots-frames.json").write_text(
        json.dumps(
            {
                "calls": crowd["live"],
                "people": PEOPLE,
                "board_frames": len(board_frames),
                "board_bytes": sum(board_frames),
                "all_frames": len(sizes),
                "largest_frame": max(sizes),
                "part_limit": PART_CHARS,
            },
            indent=2,
        )
    )
    assert errors == []
