"""The ringing threshold's default, 30 s, was longer than Teams' 15 s answer
window: an unanswered call ended (408/1106) before its alert. The default is now
8 s; a settings row still at the old default moves to it, one an admin changed
stays as it is (the admin form now refuses a threshold above the window)."""

import django.core.validators
from django.db import migrations, models


OLD, NEW = 30, 8


def forward(apps, schema_editor):
    rows = apps.get_model("calls", "AlertSettings").objects
    rows.filter(ringing_seconds=OLD).update(ringing_seconds=NEW)


def backward(apps, schema_editor):
    rows = apps.get_model("calls", "AlertSettings").objects
    rows.filter(ringing_seconds=NEW).update(ringing_seconds=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0030_audit_by_bot_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alertsettings",
            name="ringing_seconds",
            field=models.PositiveIntegerField(
                default=8,
                help_text="An incoming call not answered after this long raises an alert. Teams ends a call nobody answered after 15 s, so the threshold and the alert sweep (ALERT_SWEEP_SECONDS) together stay below that.",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(86400),
                ],
                verbose_name="ringing threshold (seconds)",
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
