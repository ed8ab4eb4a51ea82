"""JSON from the wire, read so that every value in it can be stored.

A notification batch is authenticated, so whatever JSON it carries is Microsoft's
word and must be kept, even where a value is one our database cannot hold. Reading
here makes the values storable and leaves the meaning to the resource parsers:

* bytes that are not UTF-8 become U+FFFD (they can only sit inside strings);
* NUL characters and lone surrogates (``\\u0000``, ``\\ud800``) become U+FFFD:
  PostgreSQL refuses both in text and in ``jsonb``, SQLite's driver the second;
* ``NaN``, ``Infinity``, a float that overflows, and an integer past the Int64
  range are kept as the string they were written as, so a field that wants a
  number refuses it by name and ``json.dumps`` never writes a non-JSON token;
* anything nested deeper than ``MAX_NESTING`` is replaced by ``TooDeep``, a string
  marking the cut; :func:`sanitize` reports it so the notification holding it is
  kept but not applied. Documents the C parser gives up on (``RecursionError``)
  are read by a small iterative parser instead, so depth alone never refuses a
  body.

Nothing here imports Django or knows about notifications.
"""

from __future__ import annotations

import json
import math
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # public, untyped
from typing import Any

import orjson

# Graph's deepest documented shape is a roster entry's identity:
# {value[{resourceData[{info{identity{user{...}}}}]}]} is eight levels.
MAX_NESTING = 40

_INT64 = 1 << 63
_SCALARS = frozenset({str, int, float, bool, type(None)})
_DIRTY = re.compile("[\x00\ud800-\udfff]")
# The escapes that decode to a NUL or a surrogate; a lone one survives json.loads.
_DIRTY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")
# A number with a fraction or an exponent where orjson writes a value: at the
# start, after a key or in an array (its output has no whitespace).
_FLOAT_WRITTEN = re.compile(rb"(?:^|[:,\[])-?[0-9]+[.eE]")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_RUN_OF = {"[": re.compile(r"\[+"), "]": re.compile(r"\]+")}
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = (
    ("true", True),
    ("false", False),
    ("null", None),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
)


class TooDeep(str):
    """Stands for a value nested deeper than ``MAX_NESTING`` (a ``str`` so the
    document stays JSON)."""

    __slots__ = ()


TOO_DEEP = TooDeep(f"\ufffd(nested deeper than {MAX_NESTING} levels)")


def _parse_int(text: str) -> int | str:
    # Checked on length first: int() refuses more than 4,300 digits outright.
    if len(text) <= 20:
        value = int(text)
        if -_INT64 <= value < _INT64:
            return value
    return text


def _parse_float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def _parse_constant(text: str) -> str:
    return text


_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)

# Every digit as 0: a run of 19 zeros in the translated text is a number (or part
# of a string) of 19 digits or more, which orjson would read past the Int64 range
# or as a float.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


def canonical(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))`` as UTF-8: the
    text digests are taken of, so it must not change. orjson writes the same
    bytes ten times faster or more for a document of printable ASCII without floats
    (it would write other characters unescaped and floats in its own form), the
    usual notification; anything else is written by ``json``."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        text = b""
    if (
        text
        and text.isascii()
        and b"\x7f" not in text
        and _FLOAT_WRITTEN.search(text) is None
    ):
        return text
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def compact(value: Any) -> bytes:
    """``value`` as compact JSON with its keys in their order (orjson, or
    ``json`` for what orjson refuses): the same value, parsed from the same
    text, is always written the same."""
    text = written(value)
    if text is None:
        return json.dumps(value, separators=(",", ":")).encode()
    return text


class Encoded(dict[str, Any]):
    """A JSON object together with its text as orjson wrote it (``written``),
    which ``StorageEncoder`` stores as it is instead of writing it again."""

    def __init__(self, value: dict[str, Any], text: bytes) -> None:
        super().__init__(value)
        self.text = text


def written(value: Any) -> bytes | None:
    """``value`` as orjson writes it (compact, keys in their order), or None
    where orjson refuses it."""
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None


class StorageEncoder(json.JSONEncoder):
    """The encoder of a JSON column holding wire JSON: orjson, which writes a
    large roster's notification many times faster than ``json``, with ``json``
    for what orjson refuses (integers past 64 bits, nesting past 255). An
    ``Encoded`` object is stored as the text it carries, orjson's."""

    def encode(self, o: Any) -> str:
        if type(o) is Encoded:
            return o.text.decode()
        text = written(o)
        return super().encode(o) if text is None else text.decode()


def decode_text(body: bytes | str) -> str:
    """The body as text; bytes that are not valid in its encoding become U+FFFD."""
    if isinstance(body, str):
        return body
    return body.decode(json.detect_encoding(body), errors="replace")


def loads(text: str) -> Any:
    """Parse JSON with the number rules above; raises ``ValueError`` for text that
    is not JSON. Depth is not limited here (see :func:`sanitize`).

    orjson reads the usual document (a large roster's body) several times faster
    than ``json`` and to the same value wherever it reads it: it refuses what
    ``json`` refuses, and also ``NaN``, ``Infinity``, a float that overflows, a
    lone surrogate and nesting past 1,024 levels, which ``json`` (or the
    iterative parser) then reads with the rules above. Integers are the one
    thing it reads otherwise (past the Int64 range, as an int or a float), so a
    text with a run of 19 digits anywhere goes to ``json`` as well."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # a lone surrogate in the text itself
        raw = b""
    if raw and _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return _DECODER.decode(text)
    except RecursionError:
        return _loads_iteratively(text)


def read_by_orjson(raw: bytes) -> bool:
    """True if :func:`loads` reads the text of ``raw``, a body that
    ``orjson.loads`` reads (so valid UTF-8), as ``orjson.loads(raw)``:
    ``decode_text`` reads it as UTF-8 without a byte order mark, so the text
    it gives encodes back to ``raw``, and no run of digits sends it to
    ``json``."""
    if json.detect_encoding(raw) != "utf-8":
        return False
    return _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO)


def needs_cleaning(text: str) -> bool:
    """True if strings parsed from ``text`` may hold a NUL or a lone surrogate.
    ASCII text (known without reading it) holds no surrogate, and text without
    ``\\u`` no escape of one: the regular expressions run only where needed.
    A backslash is looked for first: one character is found by ``memchr``,
    where looking for two reads a large roster's text some hundred times
    slower (0.2 ms)."""
    if "\x00" in text:
        return True
    if not text.isascii() and _DIRTY.search(text):
        return True
    return "\\" in text and "\\u" in text and _DIRTY_ESCAPE.search(text) is not None


def clean_text(value: str) -> str:
    """``value`` with NUL characters and lone surrogates replaced by U+FFFD."""
    return _DIRTY.sub("\ufffd", value) if _DIRTY.search(value) else value


# What the nesting bound keeps of a text: brackets and the quotes around strings.
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')


def nested_within(raw: bytes, limit: int) -> bool:
    """True if the JSON text ``raw`` (valid: it has been parsed) certainly nests
    no container more than ``limit`` levels deep (the document's own being one
    level), read from the text without walking the parsed document: on a large
    roster a few C passes over the bytes cost a fraction of a walk over its
    thousands of containers. False says only that it could not be told so
    cheaply (a deep document, or brackets inside strings that would need each
    string found): :func:`sanitize` then walks as before.

    Escaped backslashes and quotes go first, so every quote left delimits a
    string; then all but brackets and quotes, so a string without brackets is
    two adjacent quotes, and removing adjacent quotes (two strings merged, or
    an empty one dropped) leaves no quote unless a string holds a bracket.
    What remains is the structure, whose depth is bounded by counting the
    passes that remove its innermost pairs (each pass removes one or two levels).
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in structure:
        return False
    passes = 0
    while structure:
        passes += 1
        if 2 * passes > limit:
            return False
        structure = structure.replace(b"{}", b"").replace(b"[]", b"")
    return True


def sanitize(value: Any, *, depth: int = 0, strings: bool = True) -> tuple[Any, bool]:
    """``value`` made storable, in place where it is a container.

    Strings (and object keys) are cleaned when ``strings`` is true; containers
    more than ``MAX_NESTING`` levels below the document root (``value`` itself
    being at ``depth``) are replaced by ``TOO_DEEP``. Returns the value and
    whether anything was cut for depth. Iterative: no recursion limit applies.
    """
    if isinstance(value, str):
        return (clean_text(value) if strings else value), isinstance(value, TooDeep)
    if not isinstance(value, dict | list):
        return value, False
    if depth >= MAX_NESTING:
        return TOO_DEEP, True
    cut = False
    nodes: list[Any] = [value]
    level = depth
    while not strings and nodes and level + 1 < MAX_NESTING:
        # The usual case, kept cheap: nothing to clean, nothing to cut at this
        # level; only look for deeper containers and for cuts the parser made,
        # a whole level at a time (a large roster has thousands of containers),
        # telling them by their exact type first.
        deeper: list[Any] = []
        for node in nodes:
            for child in node.values() if isinstance(node, dict) else node:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
                elif kind is TooDeep:
                    cut = True
                elif kind not in _SCALARS and isinstance(child, dict | list):
                    deeper.append(child)
        nodes = deeper
        level += 1
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(n, level) for n in nodes]
    while stack:
        container, level = stack.pop()
        if isinstance(container, dict):
            if strings and any(_DIRTY.search(k) for k in container):
                items = [(clean_text(k), v) for k, v in container.items()]
                container.clear()
                container.update(items)
            slots: Any = container.items()
        else:
            slots = enumerate(container)
        for slot, child in list(slots):
            if isinstance(child, TooDeep):
                cut = True
            elif isinstance(child, str):
                if strings and _DIRTY.search(child):
                    container[slot] = clean_text(child)
            elif isinstance(child, dict | list):
                if level + 1 >= MAX_NESTING:
                    container[slot] = TOO_DEEP
                    cut = True
                else:
                    stack.append((child, level + 1))
    return value, cut


def _loads_iteratively(text: str) -> Any:
    """``json.loads`` without recursion, for documents too deep for the C parser.

    Same grammar and number rules as :func:`loads`. Containers deeper than
    ``MAX_NESTING`` are checked for syntax but not built (a megabyte of ``[`` costs
    a megabyte, not gigabytes); ``TOO_DEEP`` stands in for them.
    """
    # Open containers being built: (container, pending key of an object).
    stack: list[tuple[dict[str, Any] | list[Any], str]] = []
    # Open containers past MAX_NESTING, only checked: their closing characters.
    skipped = bytearray()
    pos = _skip(text, 0)

    def key_at(pos: int) -> tuple[str, int]:
        if text[pos : pos + 1] != '"':
            raise ValueError(f"Expecting property name in double quotes: char {pos}")
        key, pos = scanstring(text, pos + 1, True)
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ":":
            raise ValueError(f"Expecting ':' delimiter: char {pos}")
        return key, _skip(text, pos + 1)

    while True:
        # A value starts at pos.
        char = text[pos : pos + 1]
        value: Any
        if char in ("{", "["):
            closer = "}" if char == "{" else "]"
            after = _skip(text, pos + 1)
            if text[after : after + 1] == closer:
                value, pos = ({} if char == "{" else []), after + 1
            elif skipped or len(stack) >= MAX_NESTING:
                if char == "[":
                    # A run of "[" at once: deep arrays cost a regex, not a loop.
                    end = _run_end(text, pos, "[")
                    skipped.extend(b"]" * (end - pos))
                    pos = _skip(text, end)
                    if text[pos : pos + 1] != "]":
                        continue
                    skipped.pop()  # the innermost one is empty
                    value, pos = TOO_DEEP, pos + 1
                else:
                    skipped.append(ord(closer))
                    pos = key_at(after)[1]
                    continue
            elif char == "{":
                key, pos = key_at(after)
                stack.append(({}, key))
                continue
            else:
                stack.append(([], ""))
                pos = after
                continue
        elif char == '"':
            value, pos = scanstring(text, pos + 1, True)
        else:
            value, pos = _scalar(text, pos)
        # A value ended at pos: store it and close what it completes.
        while True:
            pos = _skip(text, pos)
            char = text[pos : pos + 1]
            if skipped:
                if char == ",":
                    pos = _skip(text, pos + 1)
                    if skipped[-1] == ord("}"):
                        pos = key_at(pos)[1]
                    break
                if char and ord(char) == skipped[-1]:
                    if char == "]":
                        # The arrays open on top of the stack, closed at once.
                        arrays = len(skipped) - 1 - skipped.rfind(b"}")
                        closed = min(_run_end(text, pos, "]") - pos, arrays)
                    else:
                        closed = 1
                    del skipped[-closed:]
                    pos += closed
                    value = TOO_DEEP
                    continue
                raise ValueError(f"Expecting ',' delimiter: char {pos}")
            if not stack:
                if pos != len(text):
                    raise ValueError(f"Extra data: char {pos}")
                return value
            container, key = stack[-1]
            if isinstance(container, dict):
                container[key] = value
            else:
                container.append(value)
            if char == ",":
                pos = _skip(text, pos + 1)
                if isinstance(container, dict):
                    key, pos = key_at(pos)
                    stack[-1] = (container, key)
                break
            if char == ("}" if isinstance(container, dict) else "]"):
                stack.pop()
                value, pos = container, pos + 1
                continue
            raise ValueError(f"Expecting ',' delimiter: char {pos}")


def _run_end(text: str, pos: int, char: str) -> int:
    """Where the run of ``char`` starting at ``pos`` ends."""
    run = _RUN_OF[char].match(text, pos)
    return run.end() if run else pos


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _scalar(text: str, pos: int) -> tuple[Any, int]:
    for literal, value in _LITERALS:
        if text.startswith(literal, pos):
            return value, pos + len(literal)
    match = _NUMBER.match(text, pos)
    if match is None or match.end() == pos:
        raise ValueError(f"Expecting value: char {pos}")
    integer, fraction, exponent = match.groups()
    if fraction or exponent:
        return _parse_float(integer + (fraction or "") + (exponent or "")), match.end()
    return _parse_int(integer), match.end()
