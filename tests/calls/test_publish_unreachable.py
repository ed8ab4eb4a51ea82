"""A publish that meets Redis gone (a restart, a network cut) is said in one
warning line, not an ERROR with a traceback per publish: the data is
committed and the pages catch up from a snapshot; any other failure keeps its
traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis.exceptions

from callbot.calls import live


class Refusing:
    """A channel layer whose every send raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        raise self.error


PUBLISHES: dict[str, Callable[[], None]] = {
    "deltas": lambda: live.publish_deltas(
        [live.CallDelta(1, 1, 2, call={"state": "established"}, board={"id": 1})]
    ),
    "board": lambda: live.publish_board({"type": "board.kpi", "kpi": {}}),
    "calls": lambda: live.publish_calls({1: {"type": "call.alert", "alert": {}}}),
    "notice": lambda: live.publish_notice({"kind": "alert"}),
}


@pytest.mark.parametrize("publish", sorted(PUBLISHES))
@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
)
def test_redis_gone_is_one_warning_line(
    publish: str,
    error: Exception,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(live, "get_channel_layer", lambda: Refusing(error))
    caplog.set_level(logging.WARNING, logger="callbot.calls.live")

    PUBLISHES[publish]()

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "the channel layer is unreachable" in record.getMessage()
    assert str(error) in record.getMessage()


def test_another_failure_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(live, "get_channel_layer", lambda: Refusing(ValueError("x")))
    caplog.set_level(logging.WARNING, logger="callbot.calls.live")

    PUBLISHES["board"]()

    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
