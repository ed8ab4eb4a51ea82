"""Giving a user a role: shared by ``create_user`` and ``demo_users``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db import router, transaction

from callbot.calls import audit
from dashboard.permissions import Role

# Who changes users from the command line (create_user, demo_users).
COMMAND_LINE = "manage.py"


# The apps an admin runs from the Django admin: every permission of each is the
# Admin role's (README: "everything, plus bot settings and the whole Django admin").
ADMIN_APPS = ("auth", "calls", "dashboard", "ivr", "django_celery_beat", "axes", "api")


def grant_admin_everything(using: str = "default", **kwargs: Any) -> None:
    """Give the Admin role every permission of ``ADMIN_APPS`` it lacks.

    Connected to ``post_migrate`` (``DashboardConfig.ready``), after Django made
    the permissions of new models: a model added in a later release is the
    admins' on an installation migrated before it existed, without a migration
    granting it (one per new model was the rule, and was forgotten). Not on a
    database without the roles (the embedded default's inbox file)."""
    if not router.allow_migrate_model(using, Group):
        return
    admin = Group.objects.using(using).filter(name=Role.ADMIN.value).first()
    if admin is None:
        return  # before dashboard's 0001 made the roles
    missing = (
        Permission.objects.using(using)
        .filter(content_type__app_label__in=ADMIN_APPS)
        .exclude(group=admin)
    )
    admin.permissions.add(*missing)


class RoleMissingError(Exception):
    """The role groups are absent: the migrations have not run."""


def set_role(user: AbstractUser, role: Role) -> None:
    """Make ``role`` the user's only role. Admins are also staff (the Django admin)."""
    try:
        group = Group.objects.get(name=role.value)
    except Group.DoesNotExist:
        raise RoleMissingError(
            f"group {role.value!r} is missing; run `manage.py migrate` first"
        ) from None
    others = Group.objects.filter(name__in=[r.value for r in Role if r is not role])
    user.groups.remove(*others)
    user.groups.add(group)
    user.is_staff = role is Role.ADMIN
    user.save(update_fields=["is_staff"])


def upsert_user(
    username: str, role: Role, *, password: str, email: str = ""
) -> tuple[AbstractUser, bool]:
    """Create or update a user with this role and password; True if created."""
    model = get_user_model()
    with transaction.atomic():
        user, created = model.objects.get_or_create(
            username=username, defaults={"email": email}
        )
        assert isinstance(user, AbstractUser)  # noqa: S101 (narrowing for mypy)
        if email and user.email != email:
            user.email = email
        user.is_active = True
        user.set_password(password)
        user.save()
        set_role(user, role)
        audit.record(
            None,
            "user_created" if created else "user_changed",
            username,
            outcome="saved",
            detail={"role": role.value, "password_set": True},
            actor_name=COMMAND_LINE,
        )
    return user, created
