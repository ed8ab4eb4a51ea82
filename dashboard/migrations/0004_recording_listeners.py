"""Who may hear recordings: the new ``calls.listen_recording`` permission goes to
the Admin and Auditor roles. Supervisors act on live calls; what a caller recorded
is personal data reviewed after the fact, so they do not get it by default (a
deployment can grant it to a group of its own).

The roster's history (``ParticipantChange``) is read like the other call rows:
every role may view it, and the Admin role has all of its permissions."""

from django.db import migrations

LISTENERS = ("Admin", "Auditor")


def _ensure_permissions(apps):
    # Copied from 0001_roles: permissions are made after migrate (post_migrate), so
    # on a fresh database they do not exist yet when this runs.
    from django.contrib.auth.management import create_permissions

    for label in ("auth", "contenttypes", "calls"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def grant(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    listen = Permission.objects.get(
        codename="listen_recording", content_type__app_label="calls"
    )
    for name in LISTENERS:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(listen)
    changes = Permission.objects.filter(
        content_type__app_label="calls", content_type__model="participantchange"
    )
    Group.objects.get_or_create(name="Admin")[0].permissions.add(*changes)
    for name in ("Supervisor", "Auditor"):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*changes.filter(codename="view_participantchange"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for listen in Permission.objects.filter(
        codename="listen_recording", content_type__app_label="calls"
    ):
        for group in Group.objects.filter(name__in=LISTENERS):
            group.permissions.remove(listen)


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0003_audit_trail_readers"),
        ("calls", "0013_recording_listen_permission"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
