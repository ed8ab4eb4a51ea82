"""The embedded default's webhook inbox in a SQLite file of its own
(``callbot/calls/inboxrouter.py``): where its rows go, what ``migrate`` makes
there, and that a store does not wait for the applier's transaction."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from django.db import connections, router, transaction

import pytest

from callbot.calls import inbox, inboxlocks, inboxrouter
from callbot.calls.models import Call, InboxBatch
from callbot.runtime.management.commands.migrate import move_left_rows

embedded_only = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")),
    reason="PostgreSQL keeps the inbox in the main database",
)


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL"), reason="the embedded default's is apart"
)
def test_with_postgresql_the_inbox_stays_in_the_main_database(settings: Any) -> None:
    assert not inboxrouter.separate()
    assert settings.DATABASE_ROUTERS == []  # no router on any query
    assert router.db_for_write(InboxBatch) == "default"
    assert router.allow_migrate_model("default", InboxBatch)


@embedded_only
def test_the_inbox_and_nothing_else_is_in_its_own_file() -> None:
    assert inboxrouter.separate()
    assert router.db_for_write(InboxBatch) == router.db_for_read(InboxBatch) == "inbox"
    assert router.db_for_write(Call) == "default"
    inbox_file = connections["inbox"].settings_dict["NAME"]
    assert inbox_file != connections["default"].settings_dict["NAME"]
    on_inbox = {
        model._meta.label
        for model in apps.get_models()
        if router.allow_migrate_model("inbox", model)
    }
    assert on_inbox == {"calls.InboxBatch"}
    assert not router.allow_migrate_model("default", InboxBatch)
    # RunPython and RunSQL (no model) run on the main database only.
    assert not router.allow_migrate("inbox", "dashboard")
    assert router.allow_migrate("default", "dashboard") is not False


@embedded_only
@pytest.mark.django_db(transaction=True)
def test_a_store_does_not_wait_for_the_applier_transaction() -> None:
    """With one file, a store waited for the applier's write transaction on the
    calls (gate and SQLite's one writer) to commit; in its own file it does not."""
    holding, release = threading.Event(), threading.Event()

    def applier() -> None:
        try:
            with inboxlocks.gate.applying(), transaction.atomic():
                Call.objects.create(graph_id="held-by-the-applier")
                holding.set()
                release.wait(timeout=30)  # only a guard against a hang
        finally:
            connections.close_all()

    thread = threading.Thread(target=applier)
    thread.start()
    try:
        assert holding.wait(timeout=30)
        stored = inbox.store(b"{}", message_id="m", tenant_id="t", notifications=0)
        # The applier still holds its transaction: the store did not wait for it.
        assert not release.is_set()
        assert InboxBatch.objects.filter(pk=stored).exists()
    finally:
        release.set()
        thread.join(timeout=30)


@embedded_only
@pytest.mark.django_db(transaction=True)
def test_migrate_moves_batches_an_earlier_version_left_in_the_main_file() -> None:
    """Rows stored in the main file's inbox table before the upgrade are moved to
    the inbox file in id order, none lost (they were answered 202)."""
    default = connections["default"]
    with default.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE calls_inboxbatch (id integer PRIMARY KEY AUTOINCREMENT,"
            " body blob NOT NULL, message_id text NOT NULL, tenant_id varchar(64)"
            " NOT NULL, notifications integer NOT NULL, received_at datetime NOT NULL,"
            " error text NOT NULL)"
        )
    try:
        when = datetime(2026, 12, 1, tzinfo=UTC).isoformat()
        with default.cursor() as cursor:
            for n in (3, 1, 2):
                cursor.execute(
                    "INSERT INTO calls_inboxbatch VALUES (%s, %s, %s, '', 1, %s, '')",
                    [n, f"body-{n}".encode(), f"m{n}", when],
                )
        InboxBatch.objects.create(
            body=b"x", message_id="already", notifications=1, received_at=when
        )

        assert move_left_rows() == 3

        assert list(InboxBatch.objects.order_by("pk").values_list("message_id")) == [
            ("already",),
            ("m1",),
            ("m2",),
            ("m3",),
        ]
        assert bytes(InboxBatch.objects.get(message_id="m2").body) == b"body-2"
        with default.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM calls_inboxbatch")
            assert cursor.fetchone()[0] == 0
        assert move_left_rows() == 0
    finally:
        with default.cursor() as cursor:
            cursor.execute("DROP TABLE calls_inboxbatch")
