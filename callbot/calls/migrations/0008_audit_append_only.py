"""Every audit entry now has its place in the chain (unique, required sequence),
and on PostgreSQL the database itself keeps the trail append-only: a trigger
refuses UPDATE and DELETE on entries and checkpoints. The one exception is
``retention.purge``, which sets ``callbot.audit_purge`` for its transaction and
may delete only entries a signed checkpoint has sealed."""

from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION calls_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND TG_TABLE_NAME = 'calls_auditentry'
       AND current_setting('callbot.audit_purge', true) = 'on'
       AND OLD.sequence <= (
           SELECT coalesce(max(sequence), 0) FROM calls_auditcheckpoint
       ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused',
        TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
"""
TABLES = ("calls_auditentry", "calls_auditcheckpoint")


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION calls_audit_append_only()"
        )


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS calls_audit_append_only()")


class Migration(migrations.Migration):
    dependencies = [("calls", "0007_audit_chain_existing_entries")]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="sequence",
            field=models.PositiveBigIntegerField(editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="entry_hash",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.RunPython(create_trigger, drop_trigger),
    ]
