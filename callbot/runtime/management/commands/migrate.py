"""``manage.py migrate``: Django's, and on the embedded default the webhook
inbox's own SQLite file too (``callbot/calls/inboxrouter.py``).

Without ``--database``, the main database is migrated, then the ``inbox`` alias
(only the inbox's table is made there), then batches an earlier version left
in the main file's inbox table are moved to the inbox file, in id order, so an
upgrade strands no batch it answered. A test database's creation migrates each
alias by name, so this adds nothing there.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from callbot.calls import inboxrouter


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if not inboxrouter.separate() or options["database"] != DEFAULT_DB_ALIAS:
            return
        default = connections[DEFAULT_DB_ALIAS]
        if default.settings_dict["NAME"] == default.settings_dict["TEST"].get("NAME"):
            return  # a test database: the test run creates the inbox alias's
        super().handle(*args, **{**options, "database": inboxrouter.ALIAS})
        moved = move_left_rows()
        if moved and options["verbosity"]:
            self.stdout.write(f"moved {moved} stored webhook batches to the inbox file")


def move_left_rows() -> int:
    """Move the rows of the main database's inbox table (an earlier version's)
    to the inbox database, in id order; how many. Copied, committed, then
    deleted: a crash in between leaves a row in both, applied twice, the second
    time as all duplicates (``inbox.py``)."""
    default = connections[DEFAULT_DB_ALIAS]
    if "calls_inboxbatch" not in default.introspection.table_names():
        return 0
    with default.cursor() as cursor:
        cursor.execute(
            "SELECT id, body, message_id, tenant_id, notifications, received_at, error"
            " FROM calls_inboxbatch ORDER BY id"
        )
        rows = cursor.fetchall()
    if not rows:
        return 0
    inbox = connections[inboxrouter.ALIAS]
    with transaction.atomic(using=inboxrouter.ALIAS), inbox.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO calls_inboxbatch (body, message_id, tenant_id,"
            " notifications, received_at, error) VALUES (%s, %s, %s, %s, %s, %s)",
            [row[1:] for row in rows],
        )
    with default.cursor() as cursor:
        cursor.execute(
            "DELETE FROM calls_inboxbatch WHERE id <= %s", [max(row[0] for row in rows)]
        )
    return len(rows)
