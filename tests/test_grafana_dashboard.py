"""The Grafana dashboard in docker/ charts only metrics Callbot exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import callbot.urls  # noqa: F401 (every metric registered, as in a web process)
from callbot.observability.collectors import SCRAPE_REGISTRY

DASHBOARD = (
    Path(__file__).parent.parent / "docker" / "grafana" / "callbot-dashboard.json"
)

pytestmark = pytest.mark.django_db


def test_every_expression_names_an_exposed_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"callbot_\w+", e)}
    exposed = {
        sample.name
        for registry in (REGISTRY, SCRAPE_REGISTRY)
        for family in registry.collect()
        for sample in family.samples
    } | {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    assert used, "no callbot metric charted"
    assert used <= exposed, used - exposed
