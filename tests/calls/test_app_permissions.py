"""The app's permissions against what each feature needs."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest

from callbot.calls import app_permissions, tasks
from callbot.calls.app_permissions import FEATURES, KNOWN_PERMISSIONS, permission_report
from callbot.graph.app_roles import AppGrant
from callbot.graph.errors import GraphAuthError

ALL = (
    "Calls.Initiate.All",
    "Calls.InitiateGroupCall.All",
    "Calls.JoinGroupCall.All",
    "Calls.JoinGroupCallAsGuest.All",
    "Calls.AccessMedia.All",
    "OnlineMeetings.ReadWrite.All",
)


def test_the_table_knows_every_permission_of_the_contract() -> None:
    assert set(KNOWN_PERMISSIONS) == set(ALL)
    assert all(f.without for f in FEATURES if f.needs)


def test_with_every_permission_everything_works() -> None:
    report = permission_report([*ALL, "User.Read.All"])

    assert report.held == KNOWN_PERMISSIONS
    assert report.missing == ()
    assert report.problems == ()
    assert all(s.works for s in report.features)
    assert report.unused == ("User.Read.All",)


def test_a_missing_permission_is_named_with_what_stops_working() -> None:
    report = permission_report([p for p in ALL if p != "Calls.JoinGroupCall.All"])

    [missing] = report.missing
    assert missing.name == "Calls.JoinGroupCall.All"
    assert not missing.optional
    assert missing.stops == (
        "The bot cannot join meetings or answer their invites, and Teams drops it "
        "from any call a participant adds a third person to.",
    )
    stopped = [s.feature.name for s in report.features if not s.works]
    assert stopped == [
        "Join meetings, answer meeting invites, remove participants, and stay in "
        "a call someone turns into a group call"
    ]


def test_a_missing_optional_permission_is_no_problem() -> None:
    report = permission_report(
        [p for p in ALL if p != "Calls.JoinGroupCallAsGuest.All"]
    )

    assert [m.name for m in report.missing] == ["Calls.JoinGroupCallAsGuest.All"]
    assert report.missing[0].optional
    assert report.problems == ()


def test_no_permissions_leaves_only_what_needs_none() -> None:
    report = permission_report([])

    assert [s.works for s in report.features] == [not f.needs for f in FEATURES]
    assert {m.name for m in report.problems} == set(ALL) - {
        "Calls.JoinGroupCallAsGuest.All"
    }


# --- the roles kept for the pages -----------------------------------------------------


@pytest.fixture
def no_roles_kept() -> Iterator[None]:
    app_permissions.forget_roles()
    yield
    app_permissions.forget_roles()


def test_roles_are_unknown_until_read(no_roles_kept: None) -> None:
    assert app_permissions.held_roles() is None


def test_remembered_roles_are_held(no_roles_kept: None) -> None:
    app_permissions.remember_roles(["Calls.Initiate.All", "Calls.AccessMedia.All"])

    assert app_permissions.held_roles() == {
        "Calls.Initiate.All",
        "Calls.AccessMedia.All",
    }


def test_a_failing_cache_leaves_the_roles_unknown(no_roles_kept: None) -> None:
    with mock.patch.object(
        app_permissions.cache, "get", side_effect=ConnectionError("down")
    ):
        assert app_permissions.held_roles() is None


def test_the_worker_reads_the_tokens_roles_and_keeps_them(no_roles_kept: None) -> None:
    grant = AppGrant(
        roles=frozenset({"Calls.Initiate.All"}),
        app_id="app",
        tenant_id="tenant",
        audience="https://graph.microsoft.com",
        expires_at=None,
    )
    client = mock.Mock(**{"app_grant.return_value": grant})
    with mock.patch.object(app_permissions, "get_graph_client", return_value=client):
        read = tasks.read_app_roles()

    assert read == ["Calls.Initiate.All"]
    assert app_permissions.held_roles() == {"Calls.Initiate.All"}


def test_an_unreadable_token_keeps_the_roles_read_before(no_roles_kept: None) -> None:
    app_permissions.remember_roles(["Calls.AccessMedia.All"])
    client = mock.Mock(
        **{"app_grant.side_effect": GraphAuthError(0, "unreadable_token", "no")}
    )
    with mock.patch.object(app_permissions, "get_graph_client", return_value=client):
        assert tasks.read_app_roles() is None

    assert app_permissions.held_roles() == {"Calls.AccessMedia.All"}
