"""A day at the end of the calendar in a date filter is refused as bad input (400,
naming the field), by the pages, the exports and the API alike, not a server error
when the filter reaches for the day after it."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest

from dashboard.permissions import Role
from dashboard.roles import upsert_user
from tests.api.conftest import token_client
from tests.dashboard.conftest import ensure_roles

pytestmark = pytest.mark.django_db

FAR = "9999-12-31"
SIGNED_IN = [
    ("/history/", "date_to"),
    ("/history/export.csv", "date_to"),
    ("/history/export.jsonl", "date_to"),
    ("/audit/", "until"),
    ("/audit/export.csv", "until"),
    ("/audit/export.jsonl", "until"),
]
BY_TOKEN = [("/api/v1/calls/", "date_to"), ("/api/v1/audit/", "until")]


@pytest.fixture
def admin_user() -> Any:
    ensure_roles()
    return upsert_user("ada", Role.ADMIN, password="ada-pw-12345")[0]


@pytest.mark.parametrize(("path", "field"), SIGNED_IN + BY_TOKEN)
@pytest.mark.parametrize("day", [FAR, "0001-01-01"])
def test_a_day_at_the_end_of_the_calendar_is_refused_as_bad_input(
    admin_user: Any, path: str, field: str, day: str
) -> None:
    if (path, field) in BY_TOKEN:
        client = token_client(admin_user)
    else:
        client = Client()
        client.force_login(admin_user)
    start = "date_from" if field == "date_to" else "since"

    # The day itself as either end of the range, with the zone furthest from UTC.
    for query in ({start: day}, {field: day}, {start: day, field: day}):
        response = client.get(path, {**query, "tz": "Asia/Tokyo"})

        assert response.status_code == 400, query
        text = response.content.decode()
        assert "Enter a date from 0001-01-02 to 9999-12-30" in text, text[:500]


@pytest.mark.parametrize(("path", "field"), SIGNED_IN)
def test_the_last_day_a_filter_takes_is_answered(
    admin_user: Any, path: str, field: str
) -> None:
    client = Client()
    client.force_login(admin_user)
    assert client.get(path, {field: "9999-12-30"}).status_code == 200
