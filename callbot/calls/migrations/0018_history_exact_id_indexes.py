"""B-tree indexes for the history's search by a whole id (an AAD object id or a
caller id that is a GUID): ``UPPER(column) = UPPER(id)``.

The trigram indexes serve substrings, but a GUID's 34 trigrams of hexadecimal
text are each in tens of thousands of identities: the GIN scan of millions of
participants takes hundreds of milliseconds to find one row. An equality on
these indexes takes a fraction of one.
"""

from django.db import migrations

INDEXES = {
    "participant_identity_upper_idx": ("calls_participant", "identity_id"),
    "call_source_id_upper_idx": ("calls_call", "source_id"),
}


def create(apps, schema_editor):
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} (upper({column}))"
        )


def drop(apps, schema_editor):
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("calls", "0017_call_waiting_since")]

    operations = [migrations.RunPython(create, drop)]
