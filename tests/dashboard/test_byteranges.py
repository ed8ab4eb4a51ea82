"""Parsing ``Range`` headers for the recording view (RFC 9110 §14)."""

from __future__ import annotations

import pytest

from dashboard.byteranges import ByteRange, RangeNotSatisfiableError, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),  # more than the file: all of it
        ("bytes=990-5000", ByteRange(990, 999)),  # an end past the file is cut
        ("bytes=999-999", ByteRange(999, 999)),
        ("BYTES = 1 - 2", ByteRange(1, 2)),
    ],
)
def test_a_single_range_is_read(header: str, expected: ByteRange) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["", "items=0-5", "bytes=0-1,5-6"])
def test_no_range_another_unit_or_several_ranges_mean_the_whole_file(
    header: str,
) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=5-4", "bytes=-0", "bytes=-", "bytes=a-b", "bytes=1-2-3"],
)
def test_a_range_the_file_cannot_serve_is_refused(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, 1000)


def test_an_empty_file_has_no_range() -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range("bytes=0-", 0)


def test_content_range_names_the_bytes_and_the_size() -> None:
    assert ByteRange(100, 199).content_range(1000) == "bytes 100-199/1000"
    assert ByteRange(100, 199).length == 100
