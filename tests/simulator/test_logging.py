"""The emulator's own logging: narration at INFO, one line per delivery only at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from callbot.simulator.__main__ import configure_logging

CHATTY = ("httpx", "httpcore")


@pytest.fixture(autouse=True)
def _restore_levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in CHATTY}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_at_info_httpx_request_lines_are_silenced() -> None:
    configure_logging("info")

    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)


def test_at_debug_every_delivery_is_logged() -> None:
    configure_logging("DEBUG")

    assert logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(SystemExit, match="loud"):
        configure_logging("loud")
