"""The health check of a reused PostgreSQL connection (callbot/runtime/postgresql):
between two worker tasks (or requests) a sound idle connection is kept with no
round trip, and one the server closed is replaced before the next statement, so
the task does not fail on it (tests/faults/test_database_restart.py holds a whole
restart). Round trips are read from libpq's own trace of the wire."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db import connection

import psycopg
import pytest

from callbot.celery import close_broken_connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL"), reason="PostgreSQL's health check"
    ),
]


def queries_sent(run: Callable[[], Any]) -> list[str]:
    """The Query and Parse messages this thread's connection sent while ``run``
    ran, as libpq traced them."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        try:
            run()
        finally:
            pgconn.untrace()
        trace.seek(0)
        return [
            line.split("\t", 1)[-1]
            for line in trace.read().splitlines()
            if "\tF\t" in line and ("\tQuery\t" in line or "\tParse\t" in line)
        ]


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_a_sound_connection_is_reused_by_the_next_task_without_a_round_trip() -> None:
    before = backend_pid()
    close_broken_connections()  # a worker task ended; the next one starts

    sent = queries_sent(lambda: User.objects.filter(pk=0).exists())

    assert len(sent) == 1, sent  # no SELECT 1 before it
    assert "auth_user" in sent[0]
    assert backend_pid() == before


def test_a_connection_the_server_closed_is_replaced_before_the_next_task() -> None:
    before = backend_pid()
    close_broken_connections()
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(url, autocommit=True) as admin:
        # Waits until that backend has exited (and told its client so).
        assert admin.execute(
            "SELECT pg_terminate_backend(%s, 5000)", [before]
        ).fetchone() == (True,)

    assert User.objects.filter(pk=0).exists() is False
    assert backend_pid() != before
