"""Role groups from the migration, the permission helpers, and the user commands."""

from __future__ import annotations

import io
from typing import Any

from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

import pytest

from dashboard.permissions import can_act, can_manage, can_view, role_of

pytestmark = pytest.mark.django_db


def test_migration_creates_the_three_role_groups() -> None:
    groups = {g.name: g for g in Group.objects.all()}
    assert {"Admin", "Supervisor", "Auditor"} <= groups.keys()
    codenames = {
        name: set(groups[name].permissions.values_list("codename", flat=True))
        for name in ("Admin", "Supervisor", "Auditor")
    }
    assert "request_action" in codenames["Supervisor"]
    assert "request_action" not in codenames["Auditor"]
    # Auditors read, read the whole audit trail and hear recordings; they change nothing.
    assert codenames["Auditor"] == {
        c for c in codenames["Auditor"] if c.startswith("view_")
    } | {"read_audit_trail", "listen_recording"}
    for codename in ("read_audit_trail", "listen_recording"):
        assert codename in codenames["Admin"]
        assert codename not in codenames["Supervisor"]
    assert codenames["Supervisor"] < codenames["Admin"]
    assert "delete_call" in codenames["Admin"]


def test_an_admin_who_is_not_a_superuser_can_run_every_admin_page(
    client: Any, django_user_model: Any
) -> None:
    admin = django_user_model.objects.create_user(
        "erin", password="erin-pw-1", is_staff=True
    )
    admin.groups.add(Group.objects.get(name="Admin"))
    codenames = set(
        Group.objects.get(name="Admin").permissions.values_list("codename", flat=True)
    )
    assert {
        "change_callpolicy",
        "change_ivrflow",
        "change_periodictask",
        "view_recording",
        "view_quarantinednotification",
        "delete_accessattempt",
    } <= codenames
    client.force_login(admin)
    for page in (
        "/admin/ivr/callpolicy/",
        "/admin/ivr/ivrflow/",
        "/admin/django_celery_beat/periodictask/",
        "/admin/calls/quarantinednotification/",
        "/admin/axes/accessattempt/",
    ):
        assert client.get(page).status_code == 200, page


def test_each_role_may_do_what_it_is_for(
    alice: Any, bob: Any, carol: Any, dave: Any
) -> None:
    rights = {
        u.username: (can_view(u), can_act(u), can_manage(u), role_of(u))
        for u in (alice, bob, carol, dave)
    }
    assert rights == {
        "alice": (True, True, True, "Admin"),
        "bob": (True, True, False, "Supervisor"),
        "carol": (True, False, False, "Auditor"),
        "dave": (False, False, False, ""),
    }


def test_create_user_gives_the_role_and_makes_admins_staff(
    django_user_model: Any,
) -> None:
    out = io.StringIO()
    call_command("create_user", "erin", "--role", "admin", stdout=out)
    erin = django_user_model.objects.get(username="erin")
    assert role_of(erin) == "Admin"
    assert erin.is_staff
    password = out.getvalue().split("Password: ")[1].strip()
    assert erin.check_password(password)

    call_command("create_user", "erin", "--role", "auditor", stdout=io.StringIO())
    erin.refresh_from_db()
    assert role_of(erin) == "Auditor"
    assert not erin.is_staff
    assert not can_act(erin)


def test_create_user_reads_the_password_from_stdin_and_validates_it(
    django_user_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="too short"):
        call_command("create_user", "finn", "--role", "supervisor", "--password-stdin")
    assert not django_user_model.objects.filter(username="finn").exists()

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-pass\n"))
    call_command(
        "create_user",
        "finn",
        "--role",
        "supervisor",
        "--password-stdin",
        stdout=io.StringIO(),
    )
    assert django_user_model.objects.get(username="finn").check_password(
        "a-long-enough-pass"
    )


def test_demo_users_is_idempotent_and_prints_the_logins(
    django_user_model: Any, settings: Any
) -> None:
    settings.USE_EMULATOR = True
    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("demo users refuse to run on PostgreSQL by design")
    out = io.StringIO()
    call_command("demo_users", stdout=out)
    call_command("demo_users", stdout=out)
    assert (
        django_user_model.objects.filter(
            username__in=["admin", "supervisor", "auditor"]
        ).count()
        == 3
    )
    supervisor = django_user_model.objects.get(username="supervisor")
    assert supervisor.check_password("callbot-supervisor")
    assert role_of(supervisor) == "Supervisor"
    assert "supervisor  password callbot-supervisor" in out.getvalue()


def test_demo_users_creates_nobody_outside_the_embedded_default(
    settings: Any, django_user_model: Any
) -> None:
    settings.USE_EMULATOR = False
    err = io.StringIO()
    call_command("demo_users", stderr=err)
    assert "only on the embedded default" in err.getvalue()
    assert not django_user_model.objects.filter(username="admin").exists()


def test_the_demo_admin_reaches_every_page_the_readme_promises(
    client: Any,
) -> None:
    """An Admin made as ``demo_users`` and ``create_user`` make one (staff, in the
    Admin group, not a superuser) runs the dashboard and the whole Django admin:
    users and groups, the IVR, beat's schedules, lock-outs, every registered model."""
    from django.contrib import admin as django_admin

    from dashboard.permissions import Role
    from dashboard.roles import upsert_user

    user, _ = upsert_user("admin", Role.ADMIN, password="callbot-admin")
    assert not user.is_superuser
    client.force_login(user)
    pages = [
        "/",
        "/meetings/",
        "/history/",
        "/reports/",
        "/audit/",
        "/settings/",
        "/settings/permissions/",
        "/admin/",
        "/admin/auth/",
        "/admin/auth/user/add/",
        "/admin/auth/group/add/",
        f"/admin/auth/user/{user.pk}/change/",
    ]
    for model in django_admin.site._registry:
        meta = model._meta
        pages += [
            f"/admin/{meta.app_label}/",
            f"/admin/{meta.app_label}/{meta.model_name}/",
        ]
    for page in dict.fromkeys(pages):
        assert client.get(page).status_code == 200, page


def test_models_added_after_an_installation_are_the_admins_too(
    client: Any,
) -> None:
    """An installation migrated before a model existed (the inbox's batches, the
    next one) gets that model's permissions at ``migrate`` (post_migrate), but no
    migration granting the Admin role ran after them: each ``migrate`` grants the
    role every permission of the apps an admin runs, so the page is not 403."""
    from django.contrib.auth.models import Permission

    from dashboard.permissions import Role
    from dashboard.roles import upsert_user

    # As on a database migrated before the model existed: Django made its
    # permissions after the upgrade's migrate, no migration gave them to the role.
    admin = Group.objects.get(name="Admin")
    admin.permissions.remove(
        *Permission.objects.filter(content_type__model="inboxbatch")
    )
    call_command("migrate", verbosity=0)
    assert set(
        admin.permissions.filter(content_type__model="inboxbatch").values_list(
            "codename", flat=True
        )
    ) == {"add_inboxbatch", "change_inboxbatch", "delete_inboxbatch", "view_inboxbatch"}
    user, _ = upsert_user("admin", Role.ADMIN, password="callbot-admin")
    client.force_login(user)
    assert client.get("/admin/calls/inboxbatch/").status_code == 200
    # Only the Admin role: the others keep exactly what their migrations gave.
    for name in ("Supervisor", "Auditor"):
        assert (
            not Group.objects.get(name=name)
            .permissions.filter(codename="view_inboxbatch")
            .exists()
        )
