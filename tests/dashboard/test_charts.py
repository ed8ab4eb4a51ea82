"""Chart geometry: round axis maxima, columns scaled under them, sparse labels."""

from __future__ import annotations

import pytest

from dashboard import charts


@pytest.mark.parametrize(
    ("value", "top"),
    [
        (0, 4),
        (1, 4),
        (4, 4),
        (5, 8),
        (7, 8),
        (11, 12),
        (21, 24),
        (90, 100),
        (180, 200),
        (950, 1000),
    ],
)
def test_axis_tops_give_four_whole_round_steps(value: float, top: float) -> None:
    assert charts.axis_top(value) == top


def test_columns_stand_on_the_baseline_in_proportion() -> None:
    chart = charts.column_chart(["a", "b", "c", "d"], [10, 20, 0, None])

    assert [t.text for t in chart.y_ticks] == ["0", "5", "10", "15", "20"]
    full = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert [c.height for c in chart.columns] == [full / 2, full, 0, 0]
    assert all(c.y + c.height == chart.baseline for c in chart.columns)
    assert chart.columns[0].x < chart.columns[1].x < chart.columns[2].x
    assert chart.columns[3].x + chart.columns[3].width <= chart.right
    assert not chart.empty


def test_many_buckets_keep_at_most_twelve_labels_per_640_units() -> None:
    labels = [f"{hour:02d}" for hour in range(48)]

    narrow = charts.column_chart(labels, [1] * 48)
    wide = charts.column_chart(labels, [1] * 48, width=1280)

    assert [t.text for t in narrow.x_ticks] == labels[::4]
    assert [t.text for t in wide.x_ticks] == labels[::2]
    assert wide.right == 1280 - charts.RIGHT


def test_an_empty_chart_says_so() -> None:
    assert charts.column_chart(["x"], [0]).empty
    assert charts.bars([], []) == []


def test_bars_fill_the_track_in_proportion_to_the_largest() -> None:
    drawn = charts.bars(
        ["a", "b", "c"], [40, 10, 0], notes=["n", "", ""], tones=["ok", "bad", "info"]
    )

    assert [(b.label, b.percent, b.text, b.note, b.tone) for b in drawn] == [
        ("a", 100.0, "40", "n", "ok"),
        ("b", 25.0, "10", "", "bad"),
        ("c", 0.0, "0", "", "info"),
    ]


def test_mismatched_labels_and_values_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        charts.column_chart(["a"], [1, 2])
