"""A large roster's entry digests taken from the last one's where the text is
shared (``graph/entrydigests.py``) are the digests of every entry taken anew."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from callbot.graph import entrydigests, wire_json
from callbot.graph.notifications import Notification, _roster, parse_notification_batch
from callbot.graph.resources import ResourceFormatError, normalise_id


@pytest.fixture(autouse=True)
def _nothing_kept() -> Iterator[None]:
    entrydigests.forget()
    yield
    entrydigests.forget()


def person(n: int, *, muted: bool = False) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "info": {"identity": {"user": {"id": f"u{n}", "displayName": f"Person {n}"}}},
        "isMuted": muted,
        "isInLobby": False,
        "mediaStreams": [{"mediaType": "audio", "direction": "sendReceive"}],
    }


# Strings that look like the list's own punctuation, where a text comparison
# could take one entry's end for another's.
TRICKY = ['},{"id":"x"}', ",{", '"', ":", "]", "\\", '","', "},{"]


def changed(entries: list[dict[str, Any]], rng: random.Random) -> list[Any]:
    """``entries`` with a few changes of the kinds a roster sees and some it
    should never see."""
    out = copy.deepcopy(entries)
    for _ in range(rng.randint(0, 4)):
        at = rng.randrange(len(out))
        kind = rng.randrange(7)
        if kind == 0:
            out[at]["isMuted"] = not out[at].get("isMuted")
        elif kind == 1:
            del out[at]
        elif kind == 2:
            out.insert(at, person(rng.randint(1, 5000)))
        elif kind == 3:
            out[at]["note"] = rng.choice(TRICKY)
        elif kind == 4:
            other = rng.randrange(len(out))
            out[at], out[other] = out[other], out[at]
        elif kind == 5:
            out[at] = {rng.choice(TRICKY): rng.choice(TRICKY), "id": out[at].get("id")}
        else:
            out[at]["info"] = {"x": [1, {"y": rng.choice(TRICKY)}]}
    while len(out) < entrydigests.MIN_ENTRIES:
        out.append(person(9000 + len(out)))
    return out


def test_digests_taken_from_the_last_roster_are_every_entrys_own() -> None:
    rng = random.Random(13)
    rosters = {salt: [person(n) for n in range(150)] for salt in (b"a", b"b")}
    for _ in range(400):
        salt = rng.choice(list(rosters))
        rosters[salt] = changed(rosters[salt], rng)
        assert entrydigests.digest_entries(
            rosters[salt], salt
        ) == entrydigests.digest_each(rosters[salt], salt)


def test_one_change_in_a_large_roster_hashes_one_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hashed: list[int] = []
    hash_texts = entrydigests._hash

    def counting(texts: list[bytes], salt: bytes) -> list[str]:
        hashed.append(len(texts))
        return hash_texts(texts, salt)

    monkeypatch.setattr(entrydigests, "_hash", counting)
    roster = [person(n) for n in range(300)]
    entrydigests.digest_entries(roster, b"s")
    roster[120] = person(120, muted=True)
    assert entrydigests.digest_entries(roster, b"s") == entrydigests.digest_each(
        roster, b"s"
    )
    # Under another salt nothing is taken from it.
    entrydigests.digest_entries(roster, b"t")
    assert hashed == [300, 1, 300, 300]


def test_a_list_orjson_cannot_write_is_digested_entry_by_entry() -> None:
    roster = [person(n) for n in range(120)]
    entrydigests.digest_entries(roster, b"s")
    roster[3]["huge"] = 2**70  # past 64 bits: written by json
    assert entrydigests.digest_entries(roster, b"s") == entrydigests.digest_each(
        roster, b"s"
    )


@pytest.mark.parametrize(
    "ids",
    [
        ["AB-cd", "ef-01", ""],
        ["AB-cd", None, "x"],
        ["ΑΣ-x", "ΣΑ", "Straße"],  # not ASCII: each id alone
        ["a\x00b", "c"],  # holds the joining character
        [],
    ],
)
def test_a_rosters_keys_are_each_ids_normalised(ids: list[str | None]) -> None:
    roster = _roster([{"id": i} if i is not None else {} for i in ids], is_delta=None)
    assert roster.keys == tuple(normalise_id(i) if i else "" for i in ids)


def test_a_roster_read_at_once_reads_as_entry_by_entry() -> None:
    plain = _roster([{"id": "a"}, {}, {"id": ""}], is_delta=None)
    assert plain.ids == ("a", None, "")
    assert plain.sequences == (None, None, None)
    assert not plain.is_delta
    numbered = _roster([{"id": "a", "rosterSequenceNumber": "7"}], is_delta=None)
    assert numbered.sequences == (7,)
    assert numbered.is_delta
    assert _roster([{"id": 5}], is_delta=None).ids == ("5",)
    with pytest.raises(ResourceFormatError):
        _roster([{"id": "a"}, ["not", "an", "object"]], is_delta=None)
    with pytest.raises(ResourceFormatError):
        _roster([{"id": {"an": "object"}}], is_delta=None)


def roster_notification(entries: list[Any], **envelope: Any) -> Notification:
    body = {
        "value": [
            {
                "changeType": "updated",
                "resourceUrl": "/communications/calls/c1/participants",
                **envelope,
                "resourceData": entries,
                "tail": "after the entries",
            }
        ]
    }
    (notification,) = parse_notification_batch(json.dumps(body))
    assert isinstance(notification, Notification)
    return notification


def test_a_large_rosters_notification_is_written_as_orjson_writes_it() -> None:
    notification = roster_notification([person(n) for n in range(150)])
    assert notification.roster is not None
    assert notification.written == orjson.dumps(notification.raw)
    assert notification.roster.text == orjson.dumps(notification.raw["resourceData"])
    # Its digests are those of its entries' texts.
    assert notification.roster.entry_digests(b"s") == entrydigests.digest_each(
        notification.roster.entries, b"s"
    )


def test_a_roster_notification_orjson_cannot_write_is_written_as_before() -> None:
    notification = roster_notification([person(n) for n in range(150)])
    notification.raw["huge"] = 2**70  # past 64 bits: orjson refuses it
    assert notification.written is None
    assert wire_json.written(notification.raw) is None
