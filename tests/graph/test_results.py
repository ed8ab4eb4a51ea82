"""Graph's call end reasons in words (contract §11.2)."""

from __future__ import annotations

from callbot.graph.results import describe_result


def test_known_pairs_are_named_with_their_numbers() -> None:
    assert describe_result(200, 5001) == "Conversation ended (200/5001)"
    assert describe_result(480, 10037) == "No callee endpoints found (480/10037)"
    assert describe_result(0, 7015) == "Transfer completed (0/7015)"


def test_other_pairs_are_described_by_their_code_class() -> None:
    assert describe_result(200, 0) == "Ended normally (200)"
    assert describe_result(0, None) == "Ended normally (0)"
    assert describe_result(404, 12345) == "Failed (client error) (404/12345)"
    assert describe_result(503, 1) == "Failed (server error) (503/1)"


def test_no_result_is_no_words() -> None:
    assert describe_result(None, None) == ""
