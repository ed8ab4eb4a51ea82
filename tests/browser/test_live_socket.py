"""static/dashboard/live.js in Chromium: deltas put in version order."""

from __future__ import annotations

from typing import Any

import pytest

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
