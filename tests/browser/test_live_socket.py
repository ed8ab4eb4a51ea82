"""static/dashboard/live.js in Chromium: deltas put in version order, and a
reconnect backoff that keeps backing off while the server accepts sockets and
drops them at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CallbotServer

pytestmark = pytest.mark.browser

DELTA_ORDER = """async () => {
    const { DeltaOrder } = await import("/static/dashboard/live.js");
    const held = new Map([["a", 3]]); // key -> the version the page holds
    const log = [];
    const order = new DeltaOrder({
        current: (key) => held.get(key) ?? null,
        apply: (key, delta) => {
            held.set(key, delta.version);
            log.push(`${key}${delta.version}`);
        },
        resync: () => log.push("resync"),
        waitMs: 50,
    });
    const waited = () => new Promise((resolve) => setTimeout(resolve, 150));

    order.offer("a", { base_version: 3, version: 4 }); // in order
    order.offer("a", { base_version: 5, version: 6 }); // early: waits
    order.offer("a", { base_version: 4, version: 5 }); // its predecessor: both apply
    order.offer("a", { base_version: 4, version: 5 }); // stale: dropped
    await waited();
    log.push("|");

    order.offer("a", { base_version: 7, version: 8 }); // version 7 never comes
    await waited();
    held.set("a", 8); // the snapshot holds version 8
    order.afterSnapshot();
    await waited();
    log.push("|");

    // Board rows carry only their version and build on the one before.
    order.offer("b", { version: 2 }); // a call the page has no row for yet
    held.set("b", 1); // its whole first row arrives
    order.drain("b");
    order.offer("c", { version: 5 }); // a call whose first row is lost
    await waited();
    order.afterSnapshot(); // not in the snapshot: gone, so no second resync
    await waited();
    return log;
}"""


def test_deltas_are_applied_in_version_order_and_a_gap_asks_for_a_snapshot(
    open_page: Any,
) -> None:
    page = open_page("bob")

    log = page.evaluate(DELTA_ORDER)

    assert log == ["a4", "a5", "a6", "|", "resync", "|", "b2", "resync"]


@pytest.fixture
def redis_outage(server: CallbotServer) -> Iterator[CallbotServer]:
    """The server restarted to accept and drop every socket; restored afterwards."""
    server.stop()
    server.app = "tests.browser.outage_asgi:application"
    server.start()
    yield server
    server.stop()
    server.app = CallbotServer.app
    server.start()


WINDOW_MS = 5000


def test_a_page_backs_off_while_every_socket_is_dropped_at_once(
    open_page: Any, server: CallbotServer, artifacts: Path, request: Any
) -> None:
    signed_in = open_page("bob")  # signs in while the server still works
    request.getfixturevalue("redis_outage")
    page = signed_in.context.new_page()
    sockets: list[Any] = []
    closes: list[Any] = []

    def opened(ws: Any) -> None:
        sockets.append(ws)
        ws.on("close", lambda closed: closes.append(closed))

    page.on("websocket", opened)

    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-live=reconnecting]")
    # A rate is what is measured here, so the test watches for a fixed time.
    page.wait_for_timeout(WINDOW_MS)

    # Doubling from 250 ms with half of each delay random: at most 6 sockets in 5 s
    # (a page that starts over on every open makes one every 250 ms, about 20).
    assert 3 <= len(sockets) <= 6, f"{len(sockets)} sockets in {WINDOW_MS} ms"
    assert len(closes) >= len(sockets) - 1
    assert page.locator("#reconnecting").is_visible()
    detail = page.locator("#reconnect-detail").inner_text()
    found = re.fullmatch(r"attempt (\d+), next in ([\d.]+) s", detail)
    assert found, detail
    assert int(found[1]) >= 3
    assert float(found[2]) >= 1.0, detail
    page.screenshot(path=artifacts / "board-outage.png")
