"""A person's permissions read in one statement (``access.read_permissions``):
the names Django's ModelBackend gives (their own and their groups'; all for a
superuser; none for an inactive user), cached on that user object only, so a
permission revoked applies to the next read of the user."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from callbot.calls.access import ActionRefusedError, check_actor, read_permissions

pytestmark = pytest.mark.django_db


def perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename, content_type__app_label="calls")


@pytest.fixture
def supervisor(django_user_model: type[User]) -> User:
    user = django_user_model.objects.create_user("sam", password="sam-pw-12345")
    group = Group.objects.create(name="Supervisor-like")
    group.permissions.add(perm("request_action"), perm("view_call"))
    user.groups.add(group)
    user.user_permissions.add(perm("listen_recording"))
    return user


def model_backends(user: User) -> set[str]:
    return ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))


@pytest.mark.parametrize("superuser", [False, True])
def test_the_names_are_model_backends_in_one_statement(
    supervisor: User, superuser: bool
) -> None:
    User.objects.filter(pk=supervisor.pk).update(is_superuser=superuser)
    fresh = User.objects.get(pk=supervisor.pk)

    with CaptureQueriesContext(connection) as queries:
        read_permissions(fresh)
        assert fresh.has_perm("calls.request_action")
        assert fresh.has_perm("calls.listen_recording")
        assert fresh.has_perm("calls.add_meeting") is superuser

    assert len(queries.captured_queries) == 1
    assert fresh.get_all_permissions() == model_backends(supervisor)
    assert {"calls.request_action", "calls.view_call", "calls.listen_recording"} <= (
        fresh.get_all_permissions()
    )


def test_an_inactive_user_holds_none(supervisor: User) -> None:
    User.objects.filter(pk=supervisor.pk).update(is_active=False)
    fresh = User.objects.get(pk=supervisor.pk)

    read_permissions(fresh)

    assert not fresh.has_perm("calls.request_action")


def test_a_check_reads_once_and_a_revoked_permission_applies_to_the_next_read(
    supervisor: User,
) -> None:
    fresh = User.objects.get(pk=supervisor.pk)
    with CaptureQueriesContext(connection) as queries:
        check_actor(fresh, what="answer")
        check_actor(fresh, what="answer")
    assert len(queries.captured_queries) == 1

    supervisor.groups.clear()

    with pytest.raises(ActionRefusedError):
        check_actor(User.objects.get(pk=supervisor.pk), what="answer")
