"""HTTP ``Range: bytes=...`` requests (RFC 9110 §14), one range at a time.

Django's ``FileResponse`` sends whole files (Django 5.2 has no Range support), so
an ``<audio>`` element could not seek. Pure: parsing only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiableError(ValueError):
    """A byte range this file cannot serve (answer 416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str, size: int) -> ByteRange | None:
    """The one byte range ``header`` asks of a ``size``-byte file, or None to send
    the whole file (no header, another unit, or several ranges, which a server
    may answer whole).

    Forms: ``bytes=0-99``, ``bytes=100-`` (to the end), ``bytes=-500`` (the last
    500). An end past the file is cut to it. Raises ``RangeNotSatisfiableError``
    for a malformed byte range, one starting past the end, an end before its
    start, or any range of an empty file.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if "," in spec:
        return None
    match = _SPEC.match(spec)
    if match is None:
        raise RangeNotSatisfiableError(f"malformed range {header[:60]!r}")
    first, last = match.groups()
    if first == "" and last == "":
        raise RangeNotSatisfiableError("a range needs a start or a length")
    if size <= 0:
        raise RangeNotSatisfiableError("the file is empty")
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiableError("a suffix range of zero bytes")
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size:
        raise RangeNotSatisfiableError(f"range starts past the end ({size} bytes)")
    if last != "" and int(last) < start:
        raise RangeNotSatisfiableError("range ends before it starts")
    return ByteRange(start, end)
