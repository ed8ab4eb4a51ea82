"""The Admin role runs the whole product: every permission of the apps an admin
works in (calls, dashboard, the IVR, beat's schedules, sign-in lock-outs),
including models added after the roles were made (recordings, quarantined
notifications). Without it a non-superuser admin got 403 on the IVR and schedule
pages of the Django admin."""

from django.db import migrations

ADMIN_APPS = ("calls", "dashboard", "ivr", "django_celery_beat", "axes")


def _ensure_permissions(apps):
    # Copied from 0001_roles: permissions are made after migrate (post_migrate), so
    # on a fresh database they do not exist yet when this runs.
    from django.contrib.auth.management import create_permissions

    for label in ("auth", "contenttypes", *ADMIN_APPS):
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def grant(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=ADMIN_APPS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_roles"),
        ("calls", "0005_quarantined_notification"),
        ("ivr", "0003_demo_policies_only_on_the_embedded_default"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
