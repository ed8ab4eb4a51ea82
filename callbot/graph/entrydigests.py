"""The digests of a roster's entries, taken again only where the text changed.

A full roster of a large meeting comes again and again with one entry changed.
Each entry's digest is BLAKE2b over a salt and its JSON as orjson writes it
(``notifications.entry_digests``); hashing a thousand entries costs a thousand
hashers, most of what the roster's digests cost. Writing the whole list is one
call, and the list's text is its entries' texts joined by commas within
brackets. So the list's text, where its entries end and their digests are kept
for the last large roster digested under each salt (a call's: its bot and our
app), and the next roster under it is compared with it as text: the entries
within the text both share from the start, and those within the text both share
at the end, are the same entries, whose digests are kept; only those in between
are written and hashed one by one.

Why the kept digests are right: reading a JSON text from its start, where each
entry ends is known at its last byte, so the same bytes from the start mean the
same entries. The end is read the same way once the entries in between are
written: their texts' lengths must bring the next entry's start exactly to
where the text shared at the end places it, and from there the same bytes are
read from the same point (between two entries of the list). If they do not, or
orjson cannot write the list, every entry is digested, as without this.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from callbot.graph import sharedtext, wire_json

# Only lists of this many entries are kept (a small roster costs little to hash),
# for this many salts at most (about its text's size each: 300 KB a thousand).
MIN_ENTRIES = 100
MAX_KEPT = 16


class Digested(NamedTuple):
    """A roster's entries as digested: the list's text, where each entry ends in
    it (the index past its last byte) and each entry's digest."""

    text: bytes
    ends: list[int]
    digests: list[str]


_kept: OrderedDict[bytes, Digested] = OrderedDict()
_lock = threading.Lock()


def digest_each(entries: Sequence[Any], salt: bytes) -> list[str]:
    """128 bits of BLAKE2b over ``salt`` and each entry's JSON in the order sent
    (``wire_json.compact``), one by one."""
    return _hash([wire_json.compact(entry) for entry in entries], salt)


def list_text(entries: Sequence[Any]) -> bytes | None:
    """The list of ``entries`` as orjson writes it; None where it cannot."""
    try:
        return orjson.dumps(entries)
    except (TypeError, orjson.JSONEncodeError):
        return None


def digest_entries(
    entries: Sequence[Any], salt: bytes, text: bytes | None = None
) -> list[str]:
    """``digest_each(entries, salt)``, hashing again only the entries that are
    not in the last large list digested under ``salt``. ``text``: the list
    as orjson writes it (``list_text``), where the caller has it."""
    if len(entries) < MIN_ENTRIES:
        return digest_each(entries, salt)
    text = text or list_text(entries)
    if text is None:
        return digest_each(entries, salt)
    last = _kept.get(salt)
    digested = None if last is None else _reuse(last, text, entries, salt)
    if digested is None:
        digested = _all(text, entries, salt)
    if digested is None:
        return digest_each(entries, salt)
    with _lock:
        _kept[salt] = digested
        _kept.move_to_end(salt)
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    return digested.digests


def forget() -> None:
    """Keep nothing (tests)."""
    with _lock:
        _kept.clear()


def _all(text: bytes, entries: Sequence[Any], salt: bytes) -> Digested | None:
    """Every entry digested, with where each ends in ``text``; None if the
    entries' texts do not make up ``text``."""
    written = _written(entries, 1)
    if written is None:
        return None
    ends, texts = written
    if (ends[-1] if ends else 1) + 1 != len(text):
        return None
    return Digested(text, ends, _hash(texts, salt))


def _written(
    entries: Sequence[Any], start: int
) -> tuple[list[int], list[bytes]] | None:
    """Each of ``entries`` as orjson writes it, and where each ends when they
    are written one after another from ``start``, a comma between them; None
    where orjson cannot write one."""
    ends = []
    texts = []
    try:
        for entry in entries:
            written = orjson.dumps(entry)
            start += len(written)
            texts.append(written)
            ends.append(start)
            start += 1
    except (TypeError, orjson.JSONEncodeError):
        return None
    return ends, texts


def _hash(texts: list[bytes], salt: bytes) -> list[str]:
    salted = hashlib.blake2b(salt + b"\x1f", digest_size=16)
    digests = []
    for text in texts:
        hasher = salted.copy()
        hasher.update(text)
        digests.append(hasher.hexdigest())
    return digests


def _reuse(
    last: Digested, text: bytes, entries: Sequence[Any], salt: bytes
) -> Digested | None:
    """``entries`` (written as ``text``) digested from ``last``: the entries of
    the text both share at the start and at the end keep their digests; None
    when the entries in between do not fill the text between them."""
    old, old_ends, old_digests = last
    if text == old:
        return last
    shared_start = sharedtext.shared_start(old, text)
    shared_end = sharedtext.shared_end(
        old, text, min(len(old), len(text)) - shared_start
    )
    # The old entries wholly within the shared start, and (from ``first``) those
    # whose comma before them is within the shared end.
    kept_start = bisect.bisect_right(old_ends, shared_start)
    first = max(bisect.bisect_left(old_ends, len(old) - shared_end) + 1, kept_start)
    first = min(first, len(old_ends))
    kept_end = len(old_ends) - first
    middle = len(entries) - kept_start - kept_end
    if middle < 0:
        return None
    start = old_ends[kept_start - 1] + 1 if kept_start else 1
    between = entries[kept_start : kept_start + middle]
    written = _written(between, start)
    if written is None:
        return None
    ends, texts = written
    after = ends[-1] + 1 if ends else start
    shift = len(text) - len(old)
    # The next entry's start: the first kept at the end's, or past the ``]``.
    expected = old_ends[first - 1] + 1 + shift if kept_end else len(text)
    if after != expected:
        return None
    return Digested(
        text,
        [*old_ends[:kept_start], *ends, *(end + shift for end in old_ends[first:])],
        [*old_digests[:kept_start], *_hash(texts, salt), *old_digests[first:]],
    )
