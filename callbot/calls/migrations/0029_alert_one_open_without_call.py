"""At most one open alert of a kind about no call (worker down): fold the
duplicates several web processes may have raised into the oldest, then add the
constraint."""

from django.db import migrations, models
from django.db.models import Q


def fold_duplicates(apps, schema_editor):
    Alert = apps.get_model("calls", "Alert")
    open_without_call = Alert.objects.filter(cleared_at=None, call=None).order_by(
        "kind", "raised_at", "id"
    )
    kept = {}
    for alert in open_without_call:
        first = kept.setdefault(alert.kind, alert)
        if first is alert:
            continue
        first.count += alert.count
        if alert.last_raised_at > first.last_raised_at:
            first.last_raised_at, first.message = alert.last_raised_at, alert.message
        first.save(update_fields=["count", "last_raised_at", "message"])
        alert.cleared_at = alert.last_raised_at
        alert.cleared_by = "duplicate"
        alert.save(update_fields=["cleared_at", "cleared_by"])


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0028_worker_heartbeat"),
    ]

    operations = [
        migrations.RunPython(fold_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="alert",
            constraint=models.UniqueConstraint(
                condition=Q(("call__isnull", True), ("cleared_at__isnull", True)),
                fields=("kind",),
                name="alert_one_open_per_kind_without_call",
            ),
        ),
    ]
