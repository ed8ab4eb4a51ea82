"""The Admin role manages users and roles in the Django admin, as the README
promises ("everything, plus bot settings and the Django admin"): every permission
of ``auth`` (users, groups), and again every permission of the apps an admin works
in, so models added since 0002 (the IVR's hand-offs, ...) are covered too.

Without ``auth`` a non-superuser admin got 403 on /admin/auth/user/ and could not
create, lock or re-role anyone but from the command line."""

from django.db import migrations

ADMIN_APPS = ("auth", "calls", "dashboard", "ivr", "django_celery_beat", "axes")


def _ensure_permissions(apps):
    # Copied from 0002: permissions are made after migrate (post_migrate), so on a
    # fresh database they do not exist yet when this runs.
    from django.contrib.auth.management import create_permissions

    for label in ("contenttypes", *ADMIN_APPS):
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


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.filter(name="Admin").first()
    if admin is not None:
        admin.permissions.remove(
            *Permission.objects.filter(content_type__app_label="auth")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0005_admin_role_edits_alerts"),
        ("calls", "0018_history_exact_id_indexes"),
        ("ivr", "0007_call_policy_handoff"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
