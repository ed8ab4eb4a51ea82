"""Once the demo prompts, "operator" flow and call policies; now a no-op."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("ivr", "0001_call_policy_flows_prompts_sessions")]

    # The demo data now comes from `manage.py demo_ivr`; databases migrated earlier keep their rows.
    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
