"""The audit page's detail in words (dashboard/auditwords.py), beside the exact JSON."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.auditwords import LIMIT, in_words


@pytest.mark.parametrize(
    ("detail", "words"),
    [
        ({}, ""),
        (None, ""),
        (
            {"action_id": 7, "params": {"name": "menu", "uri": "https://x/menu.wav"}},
            "name: menu, uri: https://x/menu.wav",
        ),
        ({"action_id": 7, "params": {}}, "no parameters"),
        (
            {
                "action_id": 7,
                "request": 12,
                "result_code": 403,
                "result_subcode": 7504,
                "result_message": "Insufficient enterprise permissions",
                "error_code": "",
                "operation_id": "op",
                "attempts": 2,
            },
            "Teams answered 403/7504, “Insufficient enterprise permissions”, "
            "after 2 attempts",
        ),
        (
            {
                "action_id": 7,
                "request": 12,
                "result_code": None,
                "result_subcode": None,
                "result_message": "",
                "error_code": "graph_timeout",
                "attempts": 1,
            },
            "error graph_timeout",
        ),
        (
            {"code": "no_permission", "message": "You may not mute."},
            "refused (no_permission): You may not mute.",
        ),
        (
            {"model": "ivr.flow", "object_id": "3", "change": ""},
            "saved without changes",
        ),
        ({"filters": {"outcome": "refused"}}, "filters: outcome refused"),
        ({"filters": {}, "rows": 1}, "filters: none; rows: 1"),
        ({"format": "csv"}, "format: csv"),
    ],
)
def test_each_shape_of_detail_reads_as_a_line(detail: Any, words: str) -> None:
    assert in_words(detail) == words


def test_a_long_detail_is_cut_with_an_ellipsis() -> None:
    words = in_words({"params": {f"p{i}": "x" * 50 for i in range(10)}})
    assert len(words) == LIMIT
    assert words.endswith("…")
