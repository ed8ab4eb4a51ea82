"""What the API does beyond who may call it: one error shape, cursor pages, the
history's filters, refusals from the same services as the socket, throttling with
Retry-After, tokens made and revoked, the session with CSRF, the docs page."""

from __future__ import annotations

import io
from typing import Any

from django.core.management import call_command
from django.test import Client

import pytest

from callbot.api.models import ApiToken
from callbot.calls import audit
from callbot.calls.models import Action, AuditEntry
from tests.api.conftest import make_actor, token_client
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob() -> Client:
    return token_client(make_actor("bob"))


def test_lists_page_by_cursor_without_repeats_or_gaps(bob: Client) -> None:
    ids = {ActionFactory().pk for _ in range(5)}
    seen: list[int] = []
    url: str | None = "/api/v1/actions/?page_size=2"
    while url:
        body = bob.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == sorted(ids, reverse=True)


def test_the_call_list_takes_the_history_filters_and_pages_by_cursor(
    bob: Client,
) -> None:
    ended = [CallFactory(direction="outgoing") for _ in range(3)]
    CallFactory(direction="incoming")
    body = bob.get("/api/v1/calls/?direction=outgoing&page_size=2").json()
    assert [r["id"] for r in body["results"]] == [ended[2].pk, ended[1].pk]
    assert body["previous"] is None
    second = bob.get(body["next"]).json()
    assert [r["id"] for r in second["results"]] == [ended[0].pk]
    assert second["next"] is None
    back = bob.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [ended[2].pk, ended[1].pk]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("outcome=lost", "outcome"),
        ("q=ab", "at least 3"),
        ("min_duration=9&max_duration=3", "shortest duration"),
        ("cursor=after:nonsense", "cursor"),
        ("cursor=sideways:1.2", "cursor"),
        ("page_size=0", "page_size"),
    ],
)
def test_bad_call_filters_are_400_naming_the_problem(
    bob: Client, query: str, says: str
) -> None:
    response = bob.get(f"/api/v1/calls/?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert says in error["message"]


def test_an_action_goes_through_the_sockets_service(
    bob: Client, enqueued: Any, django_capture_on_commit_callbacks: Any
) -> None:
    call = CallFactory(kind="group_call")
    lee = ParticipantFactory(call=call)
    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post(
            "/api/v1/actions/",
            {"kind": "mute_participant", "call": call.pk, "participant": lee.graph_id},
            content_type="application/json",
        )
    assert response.status_code == 202, response.content
    (shape,) = response.json()
    action = Action.objects.get(pk=shape["id"])
    assert (action.kind, action.status, action.requested_by.username) == (
        "mute_participant",
        "queued",
        "bob",
    )
    assert ("callbot.calls.perform_action", (action.pk,)) in enqueued
    assert AuditEntry.objects.filter(action_ref=action.pk, outcome="requested").exists()
    status = bob.get(f"/api/v1/actions/{action.pk}/").json()
    assert status["status"] == "queued"


@pytest.mark.parametrize(
    ("state", "body", "status", "code"),
    [
        ("terminated", {"kind": "hang_up"}, 409, "call_ended"),
        ("established", {"kind": "answer"}, 409, "wrong_state"),
        (
            "established",
            {"kind": "remove_participant", "participant": "x"},
            409,
            "participant_not_found",
        ),
        ("established", {"kind": "keep_alive"}, 400, "invalid"),
    ],
)
def test_refusals_keep_the_services_code_and_are_audited(
    bob: Client, state: str, body: dict[str, Any], status: int, code: str
) -> None:
    call = CallFactory(state=state, kind="group_call")
    response = bob.post(
        "/api/v1/actions/", {**body, "call": call.pk}, content_type="application/json"
    )
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not Action.objects.exists()
    if code != "invalid":
        assert AuditEntry.objects.filter(actor_name="bob", outcome="refused").exists()


def test_an_action_on_a_missing_call_is_404(bob: Client) -> None:
    response = bob.post(
        "/api/v1/actions/",
        {"kind": "hang_up", "call": 999999},
        content_type="application/json",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (
        404,
        "call_not_found",
    )


def test_malformed_json_is_400_malformed(bob: Client) -> None:
    response = bob.post(
        "/api/v1/actions/", "{not json", content_type="application/json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (
        400,
        "malformed",
    )


def test_invalid_input_names_its_fields(bob: Client) -> None:
    response = bob.post(
        "/api/v1/actions/", {"kind": "dance"}, content_type="application/json"
    )
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, "invalid")
    assert "kind" in error["fields"]


def test_a_token_over_its_rate_gets_429_with_retry_after(
    settings: Any, bob: Client
) -> None:
    settings.API_RATE_PER_MINUTE = 3
    assert [bob.get("/api/v1/me/").status_code for _ in range(3)] == [200] * 3
    response = bob.get("/api/v1/me/")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Another token of another user has its own bucket.
    assert token_client(make_actor("carol")).get("/api/v1/me/").status_code == 200


def test_the_per_user_action_limit_of_the_socket_holds_for_the_api(
    settings: Any, bob: Client, enqueued: Any
) -> None:
    settings.LIVE_ACTION_BURST = 1
    call = CallFactory()
    codes = [
        bob.post(
            "/api/v1/actions/",
            {"kind": "mute_bot", "call": call.pk},
            content_type="application/json",
        ).status_code
        for _ in range(2)
    ]
    assert codes[-1] == 429


def test_the_command_makes_a_token_shown_once_and_revokes_it() -> None:
    make_actor("bob")
    out = io.StringIO()
    call_command("api_token", "bob", "--name", "crm", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert key.startswith("cbt_")
    assert key not in {token.digest, token.prefix}
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/me/").json()["auth"] == "token"
    call_command("api_token", "bob", "--revoke", stdout=io.StringIO())
    assert client.get("/api/v1/me/").status_code == 401
    assert list(
        AuditEntry.objects.filter(target="bob")
        .order_by("sequence")
        .values_list("action", flat=True)
    )[-2:] == ["api_token.created", "api_token.revoked"]


def test_a_token_of_a_deactivated_user_stops_working(bob: Client) -> None:
    ApiToken.objects.get().user.__class__.objects.filter(username="bob").update(
        is_active=False
    )
    assert bob.get("/api/v1/me/").status_code == 401


def test_the_browser_session_works_and_must_send_the_csrf_token() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_actor("bob"))
    assert client.get("/api/v1/me/").json()["auth"] == "session"
    call = CallFactory()
    response = client.post(
        "/api/v1/actions/",
        {"kind": "hang_up", "call": call.pk},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert not Action.objects.exists()


def test_the_docs_page_lists_every_endpoint_under_the_csp_with_no_script(
    client: Client,
) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script" not in page
    assert "style=" not in page
    for path in (
        "/api/v1/calls/",
        "/api/v1/actions/{action_id}/",
        "/api/v1/audit/export.csv",
    ):
        assert path in page
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_the_browsable_api_serves_a_signed_in_browser() -> None:
    client = Client()
    client.force_login(make_actor("carol"))
    response = client.get("/api/v1/calls/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"rest_framework/js/" in response.content
    # Nothing the CSP (style-src 'self') would block and report in the console:
    # DRF's page inlines Pygments' stylesheet unless told not to.
    assert b"<style" not in response.content
    assert b"style=" not in response.content


def test_pages_without_an_icon_link_find_the_icon_at_favicon_ico() -> None:
    """The browsable API and the Django admin name no icon, so browsers ask for
    /favicon.ico: it leads to the dashboard's, not to a 404 in the console."""
    client = Client()
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/dashboard/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")


def test_the_docs_page_names_its_icon() -> None:
    """Else the browser asks for /favicon.ico, a 404 in the console of every visit."""
    page = Client().get("/api/docs/").content.decode()
    assert 'rel="icon"' in page
    assert "dashboard/favicon.svg" in page


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing/", "/api/v1/calls/abc/", "/api/v2/calls/", "/api/"]
)
def test_an_unknown_api_path_is_404_in_the_error_shape(bob: Client, path: str) -> None:
    response = bob.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_a_missing_slash_is_still_redirected_and_pages_keep_their_404(
    client: Client,
) -> None:
    response = client.get("/api/v1/calls")
    assert (response.status_code, response["Location"]) == (301, "/api/v1/calls/")
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_the_schema_is_served(client: Client) -> None:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/calls/" in response.json()["paths"]


def test_the_schema_generates_and_validates_without_warnings(tmp_path: Any) -> None:
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yaml"),
    )
    assert "/api/v1/meetings/join/" in (tmp_path / "schema.yaml").read_text()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/actions/?status=queued%00",
        "/api/v1/actions/?kind=%00",
        "/api/v1/calls/?q=abc%00",
        "/api/v1/audit/?actor=%00",
        "/api/v1/calls/{call}/timeline/?after=%00",
        "/api/v1/calls/?min_duration=9223372036854775808",
        "/api/v1/calls/?max_duration=99999999999999999999",
        "/api/v1/audit/?call=9223372036854775808",
        "/api/v1/audit/export.jsonl?call=9223372036854775808",
        "/api/v1/actions/?call=999999999999999999",
    ],
)
def test_bad_query_values_are_refused_not_a_server_error(
    url: str, enqueued: Any
) -> None:
    ada = token_client(make_actor("ada"))
    call = CallFactory()
    response = ada.get(url.format(call=call.pk))
    assert response.status_code in (200, 400), response.content
    if response.streaming:
        b"".join(response.streaming_content)  # a file fails as it is written


@pytest.mark.parametrize(
    "params",
    [
        {"uri": "https://example.com/a.wav\u0000", "name": "x"},
        {"uri": "https://example.com/a.wav", "name": "a\u0000b"},
        {"uri": {"\u0000": 1}},
    ],
)
def test_nul_characters_in_action_params_are_refused_not_a_server_error(
    params: dict[str, Any], enqueued: Any
) -> None:
    # Stored as JSON: PostgreSQL refuses a NUL character in a jsonb string.
    ada = token_client(make_actor("ada"))
    call = CallFactory()
    response = ada.post(
        "/api/v1/actions/",
        {"kind": "play_prompt", "call": call.pk, "params": params},
        content_type="application/json",
    )
    assert response.status_code < 500, response.content


def test_the_audit_list_filters_by_people_or_the_bot_as_the_page_does() -> None:
    ada = make_actor("ada")
    audit.record(ada, "hang_up", "a call", outcome="requested", detail={})
    audit.record(None, "answer", "+15550100", outcome="completed", detail={})
    client = token_client(ada)

    people = client.get("/api/v1/audit/?by=people").json()["results"]
    bot = client.get("/api/v1/audit/?by=bot").json()["results"]

    assert "hang_up" in {e["action"] for e in people}
    assert all(not e["by_bot"] for e in people)
    assert [e["action"] for e in bot] == ["answer"]
    refused = client.get("/api/v1/audit/?by=nobody")
    assert refused.status_code == 400
    assert "by" in refused.content.decode()
