"""Chart geometry for server-drawn SVG: numbers in, rectangles and ticks out.

Pure Python, no Django. The templates draw the shapes with CSS classes (colours come
from the theme's variables, so a chart follows light and dark), never inline styles:
the Content-Security-Policy allows no inline style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The column chart's coordinate system (its viewBox); the page scales it to width.
WIDTH = 640
HEIGHT = 200
LEFT = 40  # room for the y-axis labels
RIGHT = 8
TOP = 10
BOTTOM = 24  # room for the x-axis labels
MAX_X_LABELS = 12


@dataclass(frozen=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class Tick:
    position: float  # y for the value axis, x for the category axis
    text: str


@dataclass(frozen=True)
class ColumnChart:
    width: int
    height: int
    columns: list[Column]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    baseline: float
    left: int
    right: float
    empty: bool


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    percent: float  # of the largest value, 0..100
    text: str  # the value as shown beside the bar
    note: str = ""
    tone: str = "accent"  # a CSS class suffix: accent, ok, warn, bad, info


def axis_top(value: float) -> float:
    """The top of a value axis with four equal steps above zero: the smallest round
    step (1, 2, 3, 4, 5, 6 or 8 times a power of ten, 2.5 from 25 on) at least a
    quarter of ``value``, times four. Counts get whole-number ticks."""
    quarter = max(value / 4, 1)
    power = 10.0 ** math.floor(math.log10(quarter))
    steps = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
    for step in steps:
        if step == 2.5 and power < 10:
            continue  # 2.5 would give fractional ticks for counts
        if quarter <= step * power:
            return 4 * step * power
    return 40 * power  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def column_chart(
    labels: Sequence[str], values: Sequence[int | None], *, width: int = WIDTH
) -> ColumnChart:
    """Columns for ``values`` under a round maximum, with at most ``MAX_X_LABELS``
    category labels evenly spread (a month of days or two days of hours stays
    readable). ``width`` is the viewBox's: about the width it is shown at, so that
    its text is drawn near its nominal size. A None value (a bucket still to come)
    draws no column."""
    if len(labels) != len(values):
        raise ValueError("labels and values differ in length")
    known = [value or 0 for value in values]
    top = axis_top(max(known, default=0))
    plot_width = width - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    step = plot_width / max(len(values), 1)
    gap = min(step * 0.2, 6)
    columns = []
    for index, (label, value) in enumerate(zip(labels, known, strict=True)):
        height = plot_height * value / top
        columns.append(
            Column(
                x=round(LEFT + index * step + gap / 2, 2),
                y=round(baseline - height, 2),
                width=round(max(step - gap, 1), 2),
                height=round(height, 2),
                label=label,
                value=value,
            )
        )
    y_ticks = [
        Tick(round(baseline - plot_height * quarter / 4, 2), _number(top * quarter / 4))
        for quarter in range(5)
    ]
    most = MAX_X_LABELS * max(1, width // WIDTH)
    every = max(1, math.ceil(len(labels) / most))
    x_ticks = [
        Tick(round(LEFT + index * step + step / 2, 2), label)
        for index, label in enumerate(labels)
        if index % every == 0
    ]
    return ColumnChart(
        width=width,
        height=HEIGHT,
        columns=columns,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        baseline=baseline,
        left=LEFT,
        right=width - RIGHT,
        empty=not any(known),
    )


def bars(
    labels: Sequence[str],
    values: Sequence[float],
    texts: Sequence[str] | None = None,
    notes: Sequence[str] | None = None,
    tones: Sequence[str] | None = None,
) -> list[Bar]:
    """Horizontal bars scaled to the largest value (which fills the track)."""
    largest = max(values, default=0) or 1
    texts = texts if texts is not None else [_number(v) for v in values]
    notes = notes if notes is not None else [""] * len(values)
    tones = tones if tones is not None else ["accent"] * len(values)
    return [
        Bar(label, value, round(100 * value / largest, 2), text, note, tone)
        for label, value, text, note, tone in zip(
            labels, values, texts, notes, tones, strict=True
        )
    ]
