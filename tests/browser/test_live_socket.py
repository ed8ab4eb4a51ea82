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
    # Open for a moment between two drops, so wait for the banner rather than look.
    page.locator("#reconnecting").wait_for(state="visible", timeout=5000)
    detail = page.locator("#reconnect-detail").inner_text()
    found = re.fullmatch(r"attempt (\d+), next in ([\d.]+) s", detail)
    assert found, detail
    assert int(found[1]) >= 3
    assert float(found[2]) >= 1.0, detail
    page.screenshot(path=artifacts / "board-outage.png")


SNAPSHOT_PARTS = """async () => {
    const { SnapshotParts } = await import("/static/dashboard/live.js");
    const parts = new SnapshotParts(["rows"]);
    const log = [];
    const add = (m) => {
        const whole = parts.add(m);
        log.push(whole ? whole.rows.join("") : parts.busy ? "…" : "-");
    };
    add({ snapshot: "1", part: 1, parts: 3, version: 7, rows: ["a"] });
    add({ snapshot: "1", part: 2, parts: 3, rows: ["b", "c"] });
    add({ snapshot: "1", part: 3, parts: 3, rows: [] });
    add({ snapshot: "2", rows: ["whole"] }); // a snapshot of one part, as before
    add({ snapshot: "3", part: 1, parts: 2, rows: ["x"] });
    add({ snapshot: "4", part: 1, parts: 2, rows: ["y"] }); // a newer one starts over
    add({ snapshot: "3", part: 2, parts: 2, rows: ["stale"] }); // stray: dropped
    add({ snapshot: "5", part: 2, parts: 2, rows: ["orphan"] }); // never had part 1
    return log;
}"""


def test_snapshot_parts_are_gathered_in_order_and_strays_dropped(
    open_page: Any,
) -> None:
    page = open_page("carol")

    log = page.evaluate(SNAPSHOT_PARTS)

    assert log == ["…", "…", "abc", "whole", "…", "…", "-", "-"]


HOSTILE_PAGE = """async () => {
    const ws = new WebSocket(`ws://${location.host}/ws/live/`);
    const answers = [];
    await new Promise((resolve) => (ws.onopen = resolve));
    const next = () => new Promise((resolve) => (ws.onmessage = (e) => resolve(JSON.parse(e.data))));
    await next(); // hello
    for (const frame of ["hello", '{"type": "subscribe", "call": 1e400}', "[".repeat(5000) + "]".repeat(5000), new Uint8Array([1, 2, 3])]) {
        const answer = next();
        ws.send(frame);
        answers.push((await answer).code);
    }
    const pong = next();
    ws.send(JSON.stringify({ type: "ping", request_id: "still here" }));
    answers.push((await pong).type);
    let last = null;
    ws.onmessage = (e) => (last = JSON.parse(e.data));
    const closed = new Promise((resolve) => (ws.onclose = (e) => resolve(e.code)));
    for (let i = 0; i < 100; i += 1) ws.send("garbage");
    answers.push(await closed, last.code, last.message);
    return answers;
}"""


def test_bad_frames_through_daphne_are_answered_and_a_flood_closed_with_a_reason(
    open_page: Any, artifacts: Path
) -> None:
    page = open_page("bob")

    answers = page.evaluate(HOSTILE_PAGE)

    assert answers == [
        "bad_json",
        "bad_json",
        "too_deep",
        "binary",
        "pong",
        4429,
        "flooded",
        "Too many bad or excess messages.",
    ]
    # The page's own socket was never disturbed.
    assert page.locator("body").get_attribute("data-live") == "connected"


FLOODED_SOCKET = """async () => {
    const { LiveSocket } = await import("/static/dashboard/live.js");
    const socket = new LiveSocket({ subscriptions: [], onMessage: () => {} });
    socket.connect();
    await new Promise((resolve) => {
        const wait = () => (socket.ws?.readyState === WebSocket.OPEN ? resolve() : setTimeout(wait, 20));
        wait();
    });
    for (let i = 0; i < 100; i += 1) socket.ws.send("garbage");
}"""


def test_a_page_closed_for_flooding_says_why_and_waits_before_coming_back(
    open_page: Any, artifacts: Path
) -> None:
    page = open_page("bob")

    page.evaluate(FLOODED_SOCKET)

    page.wait_for_selector("body[data-live=reconnecting]")
    detail = page.locator("#reconnect-detail")
    assert detail.inner_text() == (
        "The server closed the connection: too many bad or excess messages. "
        "attempt 1, next in 15.0 s"
    )
    page.screenshot(path=artifacts / "board-flooded.png")
