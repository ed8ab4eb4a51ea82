"""bench/history.py on a tiny data set, so its generator and query shapes keep
working as the history changes (the bench itself is never collected)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.db import connection

import pytest

from bench import history as bench

pytestmark = [pytest.mark.needs_postgres, pytest.mark.django_db(transaction=True)]


def test_bench_generates_and_measures_every_query_shape() -> None:
    sizes = bench.Sizes(calls=300, participants=1200, events=900)
    with connection.cursor() as cursor:
        counts = bench.generate(cursor.cursor, sizes)
        shapes = bench.shapes(cursor, ZoneInfo("Europe/Berlin"))
    assert (counts["calls"], counts["participants"], counts["events"]) == (
        300,
        1200,
        900,
    )
    assert counts["actions"] > 300
    printed: list[str] = []
    results = bench.measure(shapes, 1, printed.append)
    assert len(printed) == len(shapes) + 1
    by_name = {r["shape"]: r for r in results}
    assert by_name["everything"]["rows"] == 50
    for name in ("search AAD object id", "search phone number", "search Graph call id"):
        assert by_name[name]["rows"] >= 1, name
    for result in results:
        assert result["indexes"], result["shape"]
        assert result["p1"][0] > 0
