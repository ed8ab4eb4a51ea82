"""A trigram index on ``IvrSession.path`` for the history's IVR filter (a
``LIKE '% token %'``), on PostgreSQL only; SQLite scans."""

from django.db import migrations

NAME = "ivr_session_path_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {NAME} ON ivr_ivrsession "
        "USING gin (path gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [("ivr", "0005_backfill_ivr_session_path")]

    operations = [migrations.RunPython(create, drop)]
