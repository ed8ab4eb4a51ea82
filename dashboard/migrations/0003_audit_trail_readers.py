"""Reading and exporting the whole audit trail (``calls.read_audit_trail``) is
for the Admin and Auditor roles; supervisors act on calls and do not audit."""

from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("calls")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(
        codename="read_audit_trail", content_type__app_label="calls"
    )
    for name in ("Admin", "Auditor"):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_admin_role_covers_every_app"),
        ("calls", "0008_audit_append_only"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
