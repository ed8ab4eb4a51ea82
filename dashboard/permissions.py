"""Who may see and do what on the dashboard, in one place.

Roles are the groups made by migration ``0001_roles``; checks go through Django
permissions, so a superuser passes everything and a custom group can mix rights.
Pages and the websocket consumer both ask these functions, on every request and
every socket message.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum

from django.contrib.auth.models import AnonymousUser, PermissionsMixin, User

from callbot.calls.access import read_permissions

VIEW_PERMISSION = "calls.view_call"
ACT_PERMISSION = "calls.request_action"
# Hearing and downloading what callers recorded: a right of its own (Admin, Auditor).
LISTEN_PERMISSION = "calls.listen_recording"
# Scheduling and joining meetings and reading the bot's configuration is admin work.
MANAGE_PERMISSION = "calls.add_meeting"
# Reading and exporting the whole audit trail: the Admin and Auditor roles.
# Supervisors act on calls and see a call's own trail on its page, not this.
AUDIT_PERMISSION = "calls.read_audit_trail"

# What ``request.user`` and ``scope["user"]`` hold.
UserLike = User | AnonymousUser


class Role(StrEnum):
    ADMIN = "Admin"
    SUPERVISOR = "Supervisor"
    AUDITOR = "Auditor"


def _member(user: UserLike) -> PermissionsMixin | None:
    """The user as a permission holder when signed in and active, else None."""
    if (
        isinstance(user, PermissionsMixin)
        and user.is_authenticated
        and getattr(user, "is_active", False)
    ):
        return user
    return None


def _holder(user: UserLike) -> PermissionsMixin | None:
    """``_member``, its permission names read in one statement (ModelBackend
    reads them in two) unless a check cached them on it already."""
    member = _member(user)
    if member is not None:
        read_permissions(user)
    return member


# Where ``ModelBackend`` caches a user's permission names on the user object.
_PERMISSION_CACHES = ("_perm_cache", "_user_perm_cache", "_group_perm_cache")


def forget_permissions(user: UserLike | None) -> None:
    """Drop the permission names a check cached on ``user``.

    A live socket keeps its user for hours and checks rights on every message;
    the cached sets (a few KiB a socket) would stay with it. Checks after this
    read the database again, which the socket wants anyway: a role changed
    while the page was open applies at its next message."""
    for name in _PERMISSION_CACHES:
        with contextlib.suppress(AttributeError):
            delattr(user, name)


def can_view(user: UserLike) -> bool:
    """May read the board, calls, meetings and their timelines."""
    member = _holder(user)
    return member is not None and member.has_perm(VIEW_PERMISSION)


def can_act(user: UserLike) -> bool:
    """May ask for actions on live calls (mute, invite, hang up, ...)."""
    member = _holder(user)
    return member is not None and member.has_perm(ACT_PERMISSION)


def can_listen(user: UserLike) -> bool:
    """May play and download call recordings (and see calls, which they belong to)."""
    member = _holder(user)
    return (
        member is not None
        and member.has_perm(VIEW_PERMISSION)
        and member.has_perm(LISTEN_PERMISSION)
    )


def can_manage(user: UserLike) -> bool:
    """May schedule and join meetings and see the bot's configuration."""
    member = _holder(user)
    return member is not None and member.has_perm(MANAGE_PERMISSION)


def can_audit(user: UserLike) -> bool:
    """May read and export the whole audit trail (/audit/)."""
    member = _holder(user)
    return member is not None and member.has_perm(AUDIT_PERMISSION)


def role_of(user: UserLike) -> str:
    """The strongest role the user holds, for display; '' when none."""
    member = _member(user)
    if member is None:
        return ""
    if member.is_superuser:
        return Role.ADMIN.value
    names = set(member.groups.values_list("name", flat=True))
    for role in Role:
        if role.value in names:
            return role.value
    return ""
