"""Trigram indexes for the history's substring search, on PostgreSQL only.

The search is Django's ``icontains`` (``UPPER(column) LIKE UPPER('%text%')``) on
participants' names and identity ids and on the call's subject, caller name and
caller id. A B-tree cannot serve a leading wildcard; a ``gin_trgm_ops`` index on
``upper(column)`` can. SQLite has neither pg_trgm nor GIN: there the same query
runs as a plain LIKE scan (slower, and fine at its sizes).
"""

from django.db import migrations

INDEXES = {
    "participant_name_trgm_idx": ("calls_participant", "display_name"),
    "participant_identity_trgm_idx": ("calls_participant", "identity_id"),
    "call_subject_trgm_idx": ("calls_call", "subject"),
    "call_source_display_trgm_idx": ("calls_call", "source_display"),
    "call_source_id_trgm_idx": ("calls_call", "source_id"),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING gin (upper({column}) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("calls", "0010_backfill_call_history")]

    operations = [migrations.RunPython(create, drop)]
