"""Schemathesis fuzzes every operation of the API from its own OpenAPI schema, as
an admin with a token (every endpoint open to it), and finds no 500.

A modest run by default (``FUZZ_EXAMPLES`` examples per operation); the e2e
variant sends many more, negative (schema-violating) inputs included.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.api.conftest import make_actor
from tests.api.world import make_world

FUZZ_EXAMPLES = 8


@contextmanager
def connection_kept_open() -> Iterator[None]:
    """The test's transaction holds every row: a request must not close the
    connection at its end (Django's own test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# Loaded from the app itself, over WSGI, when the module is collected (reading
# the schema touches no database).
with connection_kept_open():
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application()
    )


@pytest.fixture
def admin_key(db: Any, settings: Any, tmp_path: Any) -> str:
    from callbot.api.tokens import create_token

    settings.MEDIA_ROOT = tmp_path
    # Room for every generated request: the limits are tested elsewhere.
    settings.API_RATE_PER_MINUTE = 100_000
    settings.LIVE_ACTION_BURST = 100_000
    make_world()
    return create_token(make_actor("ada"))[1]


@pytest.fixture(autouse=True)
def _kept_open() -> Iterator[None]:
    with connection_kept_open():
        yield


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_generated_request_makes_a_server_error(case: Any, admin_key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Token {admin_key}"},
        checks=[not_a_server_error],
    )


@pytest.mark.e2e
@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_many_valid_and_invalid_requests_make_no_server_error(
    case: Any, admin_key: str
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Token {admin_key}"},
        checks=[not_a_server_error],
    )
