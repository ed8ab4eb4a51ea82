"""A large roster's body decoded from the last one where they share all but some
entries (``graph/rosterbodies.py``) is the document decoding it whole gives,
parsed as that one is; a body that is not JSON is refused as before."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from callbot.graph import rosterbodies, wire_json
from callbot.graph.notifications import (
    MalformedNotification,
    NotificationFormatError,
    PeekedBatch,
    parse_notification_batch,
    peek_batch,
)
from tests.graph.test_entry_digests import TRICKY, changed, person

CALL = "/communications/calls/2d1f0b9a-0000-4000-8000-00000000c411/participants"
PEOPLE = 400


@pytest.fixture(autouse=True)
def _nothing_kept() -> Iterator[None]:
    rosterbodies.forget()
    yield
    rosterbodies.forget()


def batch(entries: list[Any], url: str = CALL, **more: Any) -> dict[str, Any]:
    return {
        "value": [
            {
                "subscriptionId": "4f0a3d6c-0000-4000-8000-0000000005b5",
                "changeType": "updated",
                "resourceUrl": url,
                "resourceData": entries,
                **more,
            }
        ]
    }


def body(document: Any, layout: int = 0) -> bytes:
    """``document`` written compact, as ``json.dumps`` does, or spread out."""
    if layout == 0:
        return json.dumps(document, separators=(",", ":")).encode()
    if layout == 1:
        return json.dumps(document).encode()
    return json.dumps(document, indent=1).encode()


def read(raw: bytes) -> PeekedBatch:
    """``peek_batch``, checked against decoding the body whole."""
    peeked = peek_batch(raw)
    if peeked.document is not None:
        assert peeked.document == orjson.loads(raw)
        assert peeked.body == raw
    return peeked


def parsed_alike(raw: bytes, peeked: PeekedBatch) -> None:
    """Parsing from what was peeked gives what parsing the body alone gives."""
    alone = parse_notification_batch(raw)
    taken = parse_notification_batch(raw, peeked)
    assert [type(n) for n in taken] == [type(n) for n in alone]
    assert [n.raw for n in taken] == [n.raw for n in alone]
    assert [getattr(n, "roster", None) for n in taken] == [
        getattr(n, "roster", None) for n in alone
    ]


def test_one_changed_entry_is_decoded_alone_and_the_rest_kept() -> None:
    entries = [person(n) for n in range(PEOPLE)]
    first = body(batch(entries))
    assert len(first) >= rosterbodies.MIN_BYTES
    before = read(first)
    assert before.plain  # kept
    changed_entries = copy.deepcopy(entries)
    # The same id, one field changed: a new object, the others the kept ones.
    changed_entries[200]["info"]["identity"]["user"]["displayName"] = "Renamed"
    second = body(batch(changed_entries))

    after = read(second)

    assert after.plain
    old = before.document["value"][0]["resourceData"]
    new = after.document["value"][0]["resourceData"]
    assert all(new[i] is old[i] for i in range(PEOPLE) if i != 200)
    assert new[200] is not old[200]
    assert new[200]["info"]["identity"]["user"]["displayName"] == "Renamed"
    parsed_alike(second, after)
    (notification,) = parse_notification_batch(second, after)
    roster = notification.roster  # type: ignore[union-attr]
    assert roster.participant(200).identity.display_name == "Renamed"


def test_added_and_removed_entries_anywhere_are_read() -> None:
    entries = [person(n) for n in range(PEOPLE)]
    read(body(batch(entries)))
    for edit in range(6):
        if edit % 3 == 0:
            entries.insert(edit * 50, person(1000 + edit))
        elif edit % 3 == 1:
            del entries[-1 if edit == 1 else 0]
        else:
            entries.append(person(2000 + edit))
        raw = body(batch(entries))
        peeked = read(raw)
        assert peeked.plain
        assert [e["id"] for e in peeked.document["value"][0]["resourceData"]] == [
            e["id"] for e in entries
        ]
        parsed_alike(raw, peeked)


def test_a_random_walk_of_rosters_decodes_as_each_body_whole() -> None:
    rng = random.Random(13)
    rosters = {
        url: [person(n) for n in range(PEOPLE)]
        for url in (CALL, CALL.replace("c411", "c412"))
    }
    layouts = dict.fromkeys(rosters, 0)
    fast = 0
    for step in range(200):
        url = rng.choice(list(rosters))
        rosters[url] = changed(rosters[url], rng)
        if step % 10 == 0:  # now and then, the same roster written otherwise
            layouts[url] = rng.choice([0, 1, 2])
        more = {"tenantId": rng.choice(["t1", "t2"])} if step % 7 == 0 else {}
        document = batch(rosters[url], url, **more)
        raw = body(document, layouts[url])
        entries_before = {id(kept.entries): kept.entries for kept in rosterbodies._kept}
        peeked = read(raw)
        assert peeked.document is not None or not wire_json.read_by_orjson(raw)
        if peeked.document is not None:
            entries = peeked.document["value"][0]["resourceData"]
            if any(
                any(a is b for a, b in zip(entries, kept, strict=False))
                for kept in entries_before.values()
            ):
                fast += 1
        parsed_alike(raw, peeked)
    assert fast > 60  # those with changes close enough decoded from the last one


@pytest.mark.parametrize(
    "replacement",
    [
        b"1",
        b"{}]",
        b"[{}",
        b'{"a":1},',
        b'{"a":1},,{"b":2}',
        b'{"a":tru}',
        b"{} {}",
        b'{"a":[}',
        b"",
        b'{"a":1}],"x":[{',
        b'{"a":"\\ud800"}',
        b'{"a":1e999}',
        b'{"a":NaN}',
        b'{"a":12345678901234567890}',
        b'{"a":"\xff"}',
    ],
)
def test_a_changed_entry_of_any_text_reads_as_the_whole_body(
    replacement: bytes,
) -> None:
    entries = [person(n) for n in range(PEOPLE)]
    first = body(batch(entries))
    read(first)
    marker = orjson.dumps(entries[123])
    assert first.count(marker) == 1
    raw = first.replace(marker, replacement)

    peeked = read(raw)

    try:
        whole = orjson.loads(raw)
    except orjson.JSONDecodeError:
        whole = None
    if whole is None:
        assert peeked.document is None
    try:
        alone = parse_notification_batch(raw)
    except NotificationFormatError:
        with pytest.raises(NotificationFormatError):
            parse_notification_batch(raw, peeked)
        return
    taken = parse_notification_batch(raw, peeked)
    assert [n.raw for n in taken] == [n.raw for n in alone]


def test_an_entry_to_clean_or_nested_too_deep_is_parsed_as_before() -> None:
    entries = [person(n) for n in range(PEOPLE)]
    read(body(batch(entries)))
    deep: Any = "bottom"
    for _ in range(wire_json.MAX_NESTING):
        deep = [deep]
    for value in (deep, "NUL\u0000here", TRICKY[0]):
        changed_entries = copy.deepcopy(entries)
        changed_entries[7]["note"] = value
        raw = body(batch(changed_entries))
        peeked = read(raw)
        parsed_alike(raw, peeked)
        if value is deep:
            (notification,) = parse_notification_batch(raw, peeked)
            assert isinstance(notification, MalformedNotification)
        # What parsing cleaned or cut in place was never a kept document.
        for each in rosterbodies._kept:
            assert each.document == orjson.loads(each.text)


def test_other_bodies_are_not_kept() -> None:
    small = [person(n) for n in range(rosterbodies.MIN_ENTRIES - 1)]
    padded = batch(small, padding="x" * rosterbodies.MIN_BYTES)
    two = batch([person(n) for n in range(PEOPLE)])
    two["value"].append(two["value"][0])
    strings = batch([person(1)] * 3 + ["x" * 200] * PEOPLE)
    for document in (padded, two, strings):
        raw = body(document)
        assert len(raw) >= rosterbodies.MIN_BYTES
        assert not read(raw).plain
    assert rosterbodies._kept == []
