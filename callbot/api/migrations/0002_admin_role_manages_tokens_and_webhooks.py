"""The Admin role makes and revokes API tokens and manages webhook endpoints and
their deliveries in the Django admin: every permission of the api app."""

from django.db import migrations


def _ensure_permissions(apps):
    # Copied from dashboard 0005: permissions are made after migrate
    # (post_migrate), so on a fresh database they do not exist yet when this runs.
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("api")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None


def grant(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(*Permission.objects.filter(content_type__app_label="api"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    admin = Group.objects.filter(name="Admin").first()
    if admin is not None:
        admin.permissions.remove(
            *Permission.objects.filter(content_type__app_label="api")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_tokens_and_webhooks"),
        ("dashboard", "0005_admin_role_edits_alerts"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
