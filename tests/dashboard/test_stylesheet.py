"""The dashboard's stylesheet parses as written: every block it opens it closes, so
no rule meant for every screen is caught inside a narrow-screen ``@media`` block,
and ``hidden`` hides an element whatever display its class gives it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

STYLESHEET = Path(__file__).resolve().parents[2] / "static" / "dashboard" / "app.css"
# Comments and quoted strings: braces inside them open and close nothing.
_NOT_CODE = re.compile(r"/\*.*?\*/|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'", re.S)


def top_level_rules(css: str) -> list[tuple[str, int]]:
    """Each rule's selector (or at-rule prelude) and the depth it opens at; fails
    on a brace that closes nothing or a block left open at the end."""
    code = _NOT_CODE.sub(" ", css)
    rules: list[tuple[str, int]] = []
    depth, start = 0, 0
    for match in re.finditer(r"[{};]", code):
        char = match.group()
        if char == "{":
            rules.append((code[start : match.start()].strip(), depth))
            depth += 1
        elif char == "}":
            depth -= 1
            assert depth >= 0, f"a '}}' closes nothing at offset {match.start()}"
        start = match.end()
    assert depth == 0, f"{depth} block(s) left open at the end of the stylesheet"
    return rules


def test_every_block_of_the_stylesheet_is_closed() -> None:
    top_level_rules(STYLESHEET.read_text())


def test_the_counter_finds_a_block_left_open() -> None:
    with pytest.raises(AssertionError, match="left open"):
        top_level_rules(
            "@media (max-width: 600px) {\n  .a { color: red; }\n.b { x: y; }"
        )
    assert top_level_rules('/* { */ .a::after { content: "}"; }') == [(".a::after", 0)]


@pytest.mark.parametrize(
    "selector",
    [".table-wrap", ".waiting-badge", "button.take", ".wait-limit", ".waiting-panel"],
)
def test_the_rules_for_every_screen_are_outside_any_media_block(selector: str) -> None:
    assert (selector, 0) in top_level_rules(STYLESHEET.read_text())


def test_hidden_wins_over_a_class_that_sets_display() -> None:
    rules = _NOT_CODE.sub(" ", STYLESHEET.read_text())
    assert re.search(
        r"(?:^|})\s*\[hidden\]\s*\{\s*display:\s*none\s*!important;?\s*}", rules
    )
