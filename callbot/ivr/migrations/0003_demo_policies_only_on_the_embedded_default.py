"""The demo policies answer every call and transfer "0" to a made-up operator: keep
them for the embedded default (the emulator), switch them off on a real tenant."""

from django.conf import settings
from django.db import migrations


def disable_demo_on_a_real_tenant(apps, schema_editor):
    if getattr(settings, "USE_EMULATOR", True):
        return
    CallPolicy = apps.get_model("ivr", "CallPolicy")
    CallPolicy.objects.filter(name__startswith="Demo: ").update(enabled=False)


class Migration(migrations.Migration):
    dependencies = [("ivr", "0002_demo_prompts_operator_flow")]

    operations = [
        migrations.RunPython(disable_demo_on_a_real_tenant, migrations.RunPython.noop)
    ]
