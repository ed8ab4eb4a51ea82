"""The Admin role edits the alert thresholds (``AlertSettings``) and reads the
alerts in the Django admin: the permissions of the calls app's alert models,
which came after 0002 granted the app's permissions."""

from django.db import migrations

MODELS = ("alertsettings", "alert")


def _ensure_permissions(apps):
    # Copied from 0002: permissions are made after migrate (post_migrate), so on a
    # fresh database they do not exist yet when this runs.
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("calls")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None


def grant(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="calls", content_type__model__in=MODELS
        )
    )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.filter(name="Admin").first()
    if admin is not None:
        admin.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="calls", content_type__model__in=MODELS
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0004_recording_listeners"),
        ("calls", "0015_alerts"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
