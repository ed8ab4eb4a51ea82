"""Every endpoint x every role, anonymous and a bad token: the same rules as the
dashboard (view, act, listen, audit), answered in the API's error shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.test import Client

import pytest

from callbot.calls.models import Action, AuditEntry, Meeting
from tests.api.world import JOIN_LINK, World, make_world

# What each actor's role allows (dashboard.permissions).
RIGHTS = {
    "ada": {"view", "act", "listen", "audit"},
    "bob": {"view", "act"},
    "carol": {"view", "listen", "audit"},
    "dave": set(),
}
ACTORS = [*RIGHTS, "anonymous", "bad_token"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # as in the schema
    right: str  # "view", "act", "listen", "audit", or "signed_in"
    ok: int
    url: Callable[[World], str]
    body: Callable[[World], dict[str, Any]] | None = None


ENDPOINTS = [
    Endpoint("get", "/api/v1/calls/", "view", 200, lambda w: "/api/v1/calls/"),
    Endpoint(
        "get",
        "/api/v1/calls/{call_id}/",
        "view",
        200,
        lambda w: f"/api/v1/calls/{w.call.pk}/",
    ),
    Endpoint(
        "get",
        "/api/v1/calls/{call_id}/roster/",
        "view",
        200,
        lambda w: f"/api/v1/calls/{w.call.pk}/roster/",
    ),
    Endpoint(
        "get",
        "/api/v1/calls/{call_id}/timeline/",
        "view",
        200,
        lambda w: f"/api/v1/calls/{w.call.pk}/timeline/",
    ),
    Endpoint("get", "/api/v1/actions/", "view", 200, lambda w: "/api/v1/actions/"),
    Endpoint(
        "post",
        "/api/v1/actions/",
        "act",
        202,
        lambda w: "/api/v1/actions/",
        lambda w: {"kind": "hang_up", "call": w.call.pk},
    ),
    Endpoint(
        "get",
        "/api/v1/actions/{action_id}/",
        "view",
        200,
        lambda w: f"/api/v1/actions/{w.action.pk}/",
    ),
    Endpoint("get", "/api/v1/meetings/", "view", 200, lambda w: "/api/v1/meetings/"),
    Endpoint(
        "post",
        "/api/v1/meetings/",
        "act",
        201,
        lambda w: "/api/v1/meetings/",
        lambda w: {"join_web_url": JOIN_LINK, "subject": "Weekly"},
    ),
    Endpoint(
        "get",
        "/api/v1/meetings/{meeting_id}/",
        "view",
        200,
        lambda w: f"/api/v1/meetings/{w.meeting.pk}/",
    ),
    Endpoint(
        "patch",
        "/api/v1/meetings/{meeting_id}/",
        "act",
        200,
        lambda w: f"/api/v1/meetings/{w.meeting.pk}/",
        lambda w: {"subject": "Renamed"},
    ),
    Endpoint(
        "post",
        "/api/v1/meetings/{meeting_id}/join/",
        "act",
        202,
        lambda w: f"/api/v1/meetings/{w.meeting.pk}/join/",
        lambda w: {},
    ),
    Endpoint(
        "post",
        "/api/v1/meetings/join/",
        "act",
        202,
        lambda w: "/api/v1/meetings/join/",
        lambda w: {"join_web_url": JOIN_LINK},
    ),
    Endpoint(
        "get", "/api/v1/recordings/", "view", 200, lambda w: "/api/v1/recordings/"
    ),
    Endpoint(
        "get",
        "/api/v1/recordings/{recording_id}/",
        "view",
        200,
        lambda w: f"/api/v1/recordings/{w.recording.pk}/",
    ),
    Endpoint(
        "get",
        "/api/v1/recordings/{recording_id}/audio/",
        "listen",
        200,
        lambda w: f"/api/v1/recordings/{w.recording.pk}/audio/",
    ),
    Endpoint("get", "/api/v1/audit/", "audit", 200, lambda w: "/api/v1/audit/"),
    Endpoint(
        "get",
        "/api/v1/audit/export.csv",
        "audit",
        200,
        lambda w: "/api/v1/audit/export.csv",
    ),
    Endpoint(
        "get",
        "/api/v1/audit/export.jsonl",
        "audit",
        200,
        lambda w: "/api/v1/audit/export.jsonl",
    ),
    Endpoint("get", "/api/v1/alerts/", "view", 200, lambda w: "/api/v1/alerts/"),
    Endpoint("get", "/api/v1/me/", "signed_in", 200, lambda w: "/api/v1/me/"),
]


def expected_status(endpoint: Endpoint, actor: str) -> int:
    if actor in ("anonymous", "bad_token"):
        return 401
    if endpoint.right == "signed_in" or endpoint.right in RIGHTS[actor]:
        return endpoint.ok
    return 403


def send(client: Client, endpoint: Endpoint, world: World) -> Any:
    url = endpoint.url(world)
    if endpoint.body is None:
        return getattr(client, endpoint.method)(url)
    return getattr(client, endpoint.method)(
        url, endpoint.body(world), content_type="application/json"
    )


@pytest.fixture
def world(db: Any, settings: Any, tmp_path: Any) -> World:
    settings.MEDIA_ROOT = tmp_path
    return make_world()


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize(
    "endpoint", ENDPOINTS, ids=[f"{e.method} {e.path}" for e in ENDPOINTS]
)
def test_each_role_gets_what_the_dashboard_gives_it(
    endpoint: Endpoint, actor: str, actor_client: Any, world: World, enqueued: Any
) -> None:
    client = actor_client(actor)
    actions_before = Action.objects.count()
    meetings_before = Meeting.objects.count()
    response = send(client, endpoint, world)
    want = expected_status(endpoint, actor)
    assert response.status_code == want, response.content[:500]
    if want >= 400:
        body = response.json()
        assert set(body) == {"error"}
        assert (
            body["error"]["code"]
            in {
                401: ("not_authenticated", "authentication_failed"),
                403: ("forbidden",),
            }[want]
        )
        if want == 401:
            assert response["WWW-Authenticate"] == "Token"
        # A refused request changed nothing.
        assert Action.objects.count() == actions_before
        assert Meeting.objects.count() == meetings_before
    elif endpoint.method == "post" and endpoint.ok == 202:
        assert Action.objects.count() > actions_before


def test_a_bad_token_and_no_token_are_told_apart(actor_client: Any) -> None:
    assert actor_client("anonymous").get("/api/v1/calls/").json()["error"]["code"] == (
        "not_authenticated"
    )
    assert actor_client("bad_token").get("/api/v1/calls/").json()["error"]["code"] == (
        "authentication_failed"
    )


def test_the_matrix_covers_every_operation_of_the_schema(db: Any) -> None:
    from callbot.api.docs import schema

    operations = {
        (method, path)
        for path, item in schema()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == {(e.method, e.path) for e in ENDPOINTS}


def test_reads_are_audited_where_the_dashboard_audits_them(
    actor_client: Any, world: World
) -> None:
    client = actor_client("ada")
    assert (
        client.get(f"/api/v1/recordings/{world.recording.pk}/audio/").status_code == 200
    )
    assert client.get("/api/v1/audit/export.csv").status_code == 200
    kinds = list(
        AuditEntry.objects.filter(actor_name="ada").values_list("action", flat=True)
    )
    assert "recording.download" in kinds
    assert "export.audit" in kinds
