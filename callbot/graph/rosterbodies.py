"""A large roster's body decoded only where it differs from the last one.

A full roster of a large meeting comes again and again with one entry changed:
a 1,000-person body is some 317 KB, of which a mute changes a few bytes, and
decoding all of it (about 7,000 containers, then freeing them) was the
largest part of what such a post costs beyond a small meeting's. So the last
large bodies decoded (``MAX_KEPT``, a call's each) are kept with their
documents and, once asked for, where each entry of their roster lies in the
text. A body that shares its start and its end with a kept one is decoded as
that one's document with the entries between what the two share replaced by
those the new text holds there, which orjson decodes alone; the other entries
are the same objects.

Why the document is the same as decoding the whole body: the new body is the
kept one's text up to the start of an entry after its comma (or up to just
after the list's ``[``), the text in between, and the kept one's text from the
start of an entry (or the list's ``]``) on. Reading JSON from the start, the
same characters leave the reader in the same place: where an element of the
roster's list is due after a comma (or the list's first element or its end).
The text in between is read within ``[{},`` and ``{}]``, stand-ins for the
entries before and after it (``{}`` starts with ``{`` as the next entry does):
it reads as a list only if, from that place, it is entries and their commas
up to where an element is due again, there the next kept entry, from which
the rest reads as it read in the kept body. So the body is valid JSON if that
list is, and its roster is the kept entries with what stands between the
stand-ins in its place; a list orjson refuses sends the body to be decoded
whole, which refuses it as before.

What ``parse_notification_batch`` then does is unchanged. A body is kept, and
taken from, only where parsing would not clean it in place (``plain``: no
string to clean, nesting within bounds), since the next body shares its
entries' objects; and where ``wire_json.loads`` reads it as orjson does
(``wire_json.read_by_orjson``). Anything else (a body that is not one
roster's notification, a change outside the roster, a kept body's layout not
read) is decoded whole, as without this.

The body is read before it is verified (``notifications.peek_batch``): a
forged body can take a kept one's place, never change what another body
decodes to, since each kept document is its own text's.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from itertools import accumulate, pairwise
from json.decoder import scanstring  # type: ignore[attr-defined]  # public, untyped
from json.scanner import make_scanner
from typing import Any, cast

import orjson

from callbot.graph import sharedtext, wire_json

# Bodies from this size on (a roster of about 200 people) with a roster of this
# many entries at least are kept, this many at most: about six times the
# body's size each while kept (its text and its document: 1.9 MB for a
# 1,000-person roster), which the collector's full collections walk.
MIN_BYTES = 64 * 1024
MIN_ENTRIES = 100
MAX_KEPT = 8

_WHITESPACE = " \t\n\r"
# Where each entry ends: json's C scanner reads one value from a given index
# and says where it ended (with the number rules of ``wire_json.loads``).
_scan = cast(Any, make_scanner)(wire_json._DECODER)


@dataclass(eq=False)
class Kept:
    """A body as decoded: its text, its document (a batch of one notification
    whose ``resourceData`` is ``entries``), and once read, where its roster's
    list opens and closes in the text, where its first entry starts and how
    far each entry's start is from the next one's (or from the ``]``): a
    next body's layout is these lists' slices, never a loop over them."""

    text: str
    document: dict[str, Any]
    item: dict[str, Any]
    entries: list[Any]
    url: Any = None  # the notification's resourceUrl: one kept per URL
    opened: int = -1
    closed: int = -1
    head: int = -1
    widths: list[int] | None = None


_kept: list[Kept] = []
_lock = threading.Lock()


def forget() -> None:
    """Keep nothing (tests)."""
    with _lock:
        _kept.clear()


def roster_of(document: Any) -> tuple[dict[str, Any], list[Any]] | None:
    """The notification and its roster's entries of a batch of one large
    full-roster notification; None for any other document."""
    if type(document) is not dict:
        return None
    items = document.get("value")
    if type(items) is not list or len(items) != 1 or type(items[0]) is not dict:
        return None
    entries = items[0].get("resourceData")
    if type(entries) is not list or len(entries) < MIN_ENTRIES:
        return None
    if not all(type(entry) is dict for entry in entries):
        return None
    return items[0], entries


def plain(text: str, document: Any) -> bool:
    """True if parsing ``text``, decoded to ``document``, would leave it as it
    is: no string to clean, nothing nested too deep (``parse_notification_batch``
    walks it otherwise). The nesting is read from the text where it tells it
    cheaply, else from the document (a roster whose strings hold brackets)."""
    if wire_json.needs_cleaning(text):
        return False
    return wire_json.nested_within(text.encode(), wire_json.MAX_NESTING) or (
        _shallow([document], 0)
    )


def _shallow(values: list[Any], depth: int) -> bool:
    """True if no container in ``values`` (at ``depth`` from the document)
    or within them lies ``wire_json.MAX_NESTING`` levels deep or deeper, where
    parsing would cut it. A level at a time, as ``wire_json.sanitize`` walks."""
    nodes = [value for value in values if type(value) is dict or type(value) is list]
    level = depth
    while nodes:
        if level >= wire_json.MAX_NESTING:
            return False
        deeper = []
        for node in nodes:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        nodes = deeper
        level += 1
    return True


def keep(body: bytes, document: Any) -> bool:
    """Keep ``body``, decoded whole to ``document`` as ``wire_json.loads``
    reads it, where a next body may be decoded from it; whether it is
    ``plain`` (known: parsing leaves it as it is)."""
    if len(body) < MIN_BYTES:
        return False
    roster = roster_of(document)
    if roster is None:
        return False
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return False
    if not plain(text, document):
        return False
    item, entries = roster
    _remember(Kept(text, document, item, entries, _url(item)))
    return True


def _url(item: dict[str, Any]) -> Any:
    return item.get("resourceUrl") or item.get("resource")


def decode(body: bytes) -> Any:
    """``body``'s document as ``orjson.loads`` reads it, decoded from a kept
    body where it shares all but some of its roster's entries with one, which
    ``wire_json.loads`` also reads so and parsing leaves as it is (``plain``);
    None where it does not (decode it whole, then ``keep``)."""
    if len(body) < MIN_BYTES or not _kept:
        return None
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    if wire_json.needs_cleaning(text):
        return None
    with _lock:
        candidates = list(_kept)
    best: tuple[int, Kept] | None = None
    for kept in candidates:
        shared = sharedtext.shared_start(kept.text, text)
        if best is None or shared > best[0]:
            best = (shared, kept)
    if best is None:
        return None
    shared_start, kept = best
    old = kept.text
    if shared_start == len(old) == len(text):
        return kept.document  # the same body again (parsing leaves it as it is)
    shared_end = sharedtext.shared_end(
        old, text, min(len(old), len(text)) - shared_start
    )
    if 2 * (len(text) - shared_start - shared_end) > len(text):
        # Most of it changed: decoding the entries in between (and reading
        # where they lie) would cost more than decoding it whole.
        return None
    if kept.widths is None and not _read_layout(kept):
        with _lock:
            if kept in _kept:
                _kept.remove(kept)
        return None
    decoded = _decoded(kept, text, shared_start, shared_end)
    if decoded is None:
        return None
    _remember(decoded)
    return decoded.document


def _decoded(kept: Kept, text: str, shared_start: int, shared_end: int) -> Kept | None:
    """``text``, which shares ``shared_start`` characters from its start and
    ``shared_end`` at its end with ``kept``'s (whose layout is read), decoded
    from it, with its layout; None where it cannot be."""
    old = kept.text
    widths = kept.widths
    if widths is None:
        return None
    if shared_start <= kept.opened or shared_end < len(old) - kept.closed:
        return None
    count = len(widths)
    starts = list(accumulate(widths, initial=kept.head))  # the ``]`` last
    # The entries kept at the start: each up to the next one's start shared
    # (its comma too); at the end: each with the byte before it shared.
    first = min(bisect.bisect_right(starts, shared_start, 1) - 1, count - 1)
    after = max(bisect.bisect_right(starts, len(old) - shared_end, 0, count), first)
    gap_start = starts[first] if first else kept.opened + 1
    shift = len(text) - len(old)
    gap_end = starts[after] + shift
    if gap_end < gap_start or 2 * (gap_end - gap_start) > len(text):
        return None
    between = text[gap_start:gap_end]
    if wire_json._LONG_DIGIT_RUN in between.encode().translate(
        wire_json._DIGITS_AS_ZERO
    ):
        return None  # ``wire_json.loads`` would read it with ``json``
    wrapped = ("[{}," if first else "[") + between + ("{}]" if after < count else "]")
    try:
        read = orjson.loads(wrapped)
    except orjson.JSONDecodeError:
        return None
    new = read[1 if first else 0 : len(read) - 1 if after < count else len(read)]
    if not all(type(entry) is dict for entry in new):
        return None
    # The list of entries is four levels down: in the document, its ``value``,
    # the notification, ``resourceData``. Nested too deep, parsing would walk
    # it and cut in place, in entries the next body shares: decoded whole.
    if not (
        wire_json.nested_within(wrapped.encode(), wire_json.MAX_NESTING - 3)
        or _shallow(new, 4)
    ):
        return None
    new_starts = _entries_at(text, gap_start, len(new))
    if new_starts is None:
        return None
    if (_next_entry(text, new_starts[-1]) if new else _skip(text, gap_start)) != (
        gap_end
    ):
        return None  # not where the reading above placed them
    entries = [*kept.entries[:first], *new, *kept.entries[after:]]
    if len(entries) < MIN_ENTRIES:
        return None
    new_starts[-1] = gap_end  # where the entry after them starts
    item = {**kept.item, "resourceData": entries}
    return Kept(
        text,
        {**kept.document, "value": [item]},
        item,
        entries,
        kept.url,
        kept.opened,
        kept.closed + shift,
        kept.head if first else new_starts[0],
        [
            *widths[:first],
            *(b - a for a, b in pairwise(new_starts)),
            *widths[after:],
        ],
    )


def _remember(kept: Kept) -> None:
    """Keep ``kept`` first, in place of one of the same URL."""
    with _lock:
        _kept[:] = [kept, *(k for k in _kept if k.url != kept.url)][:MAX_KEPT]


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _entries_at(text: str, pos: int, count: int) -> list[int] | None:
    """Where ``count`` entries of a list start in ``text``, read from ``pos``
    (after the list's ``[``, or where an entry starts); the end of the last
    one appended."""
    starts: list[int] = []
    try:
        for index in range(count):
            pos = _skip(text, pos)
            if index:
                if text[pos] != ",":
                    return None
                pos = _skip(text, pos + 1)
            if text[pos] != "{":
                return None
            starts.append(pos)
            pos = _scan(text, pos)[1]
    except (StopIteration, ValueError, IndexError, RecursionError):
        return None
    starts.append(pos)
    return starts


def _next_entry(text: str, pos: int) -> int:
    """Where the entry after an entry ending at ``pos`` starts (past the
    comma and any whitespace), or the list's ``]`` is."""
    pos = _skip(text, pos)
    return _skip(text, pos + 1) if text[pos : pos + 1] == "," else pos


def _read_layout(kept: Kept) -> bool:
    """Read where ``kept``'s roster lies in its text: the path
    ``{"value": [{"resourceData": [...]}]}``, each key once; False where it
    is not that."""
    text = kept.text
    found: list[tuple[int, list[int]]] = []

    def members(pos: int, descend: str) -> int:
        """Read the object at ``pos`` up to past its ``}``, descending into
        the value of key ``descend``."""
        if text[pos] != "{":
            raise ValueError("not an object")
        pos = _skip(text, pos + 1)
        if text[pos] == "}":
            return pos + 1
        seen = False
        while True:
            if text[pos] != '"':
                raise ValueError("not a key")
            key, pos = scanstring(text, pos + 1)
            pos = _skip(text, pos)
            if text[pos] != ":":
                raise ValueError("no colon")
            pos = _skip(text, pos + 1)
            if key == descend:
                if seen:
                    raise ValueError("twice")
                seen = True
                pos = notification(pos) if descend == "value" else roster(pos)
            else:
                pos = _scan(text, pos)[1]
            pos = _skip(text, pos)
            if text[pos] == "}":
                if not seen:
                    raise ValueError("missing")
                return pos + 1
            if text[pos] != ",":
                raise ValueError("no comma")
            pos = _skip(text, pos + 1)

    def notification(pos: int) -> int:
        if text[pos] != "[":
            raise ValueError("not a list")
        pos = members(_skip(text, pos + 1), "resourceData")
        pos = _skip(text, pos)
        if text[pos] != "]":
            raise ValueError("more than one notification")
        return pos + 1

    def roster(pos: int) -> int:
        if text[pos] != "[":
            raise ValueError("not a list")
        starts = _entries_at(text, pos + 1, len(kept.entries))
        if starts is None or not kept.entries:
            raise ValueError("not its entries")
        end = _skip(text, starts[-1])
        if text[end] != "]":
            raise ValueError("more entries")
        starts[-1] = end
        found.append((pos, starts))
        return end + 1

    try:
        end = members(_skip(text, 0), "value")
    except (StopIteration, ValueError, IndexError, RecursionError):
        return False
    if _skip(text, end) != len(text) or len(found) != 1:
        return False
    kept.opened, starts = found[0]
    kept.closed, kept.head = starts[-1], starts[0]
    kept.widths = [b - a for a, b in pairwise(starts)]
    return True
