"""Once switched the demo policies off on a real tenant by reading settings; now a no-op."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ivr", "0002_demo_prompts_operator_flow")]

    # The demo data now comes from `manage.py demo_ivr`; databases migrated earlier keep their rows.
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
