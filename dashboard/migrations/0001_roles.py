"""Role groups: Admin does everything, Supervisor acts on calls, Auditor only reads.

Permissions are normally created after migrate (post_migrate); on a fresh database
they do not exist yet when this runs, so they are created here first.
"""

from django.db import migrations

ROLE_APPS = ("calls", "dashboard")


def _ensure_permissions(apps):
    from django.contrib.auth.management import create_permissions

    for label in ("auth", "contenttypes", *ROLE_APPS):
        try:
            app_config = apps.get_app_config(label)
        except LookupError:
            continue  # an app without models has no permissions to create
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def create_roles(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    role_perms = Permission.objects.filter(content_type__app_label__in=ROLE_APPS)
    view = role_perms.filter(codename__startswith="view_")
    act = role_perms.filter(codename="request_action", content_type__app_label="calls")

    admin, _ = Group.objects.get_or_create(name="Admin")
    admin.permissions.add(*role_perms)
    supervisor, _ = Group.objects.get_or_create(name="Supervisor")
    supervisor.permissions.add(*view, *act)
    auditor, _ = Group.objects.get_or_create(name="Auditor")
    auditor.permissions.add(*view)


def remove_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name__in=["Admin", "Supervisor", "Auditor"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("calls", "0002_action_request_permission"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
