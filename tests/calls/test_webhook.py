"""The Graph webhook: tokens checked against a JWKS served over real HTTP; bad
tokens and bad bodies refused with nothing stored; good batches stored and 202."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from django.test import Client

import pytest

from callbot.calls.models import Call, CallEvent, Participant
from callbot.graph.factory import reset_notification_authenticator
from tests.conftest import load_fixture
from tests.support.jwt import OMIT, JwksServer, TestTokenIssuer

pytestmark = pytest.mark.django_db

URL = "/api/calling/callback"


@pytest.fixture
def webhook(
    settings: Any, jwks_server: JwksServer, token_issuer: TestTokenIssuer
) -> Iterator[Client]:
    """A client posting to the webhook, with Callbot trusting ``token_issuer``."""
    settings.GRAPH_NOTIFICATION_OPENID_URL = jwks_server.openid_url
    settings.GRAPH_CLIENT_ID = token_issuer.audience
    settings.GRAPH_CA_BUNDLE = ""
    reset_notification_authenticator()
    yield Client()
    reset_notification_authenticator()


def post(client: Client, body: Any, auth: str | None, **headers: str) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    extra = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    for name, value in headers.items():
        extra["HTTP_" + name.upper().replace("-", "_")] = value
    return client.post(URL, data=data, content_type="application/json", **extra)


def assert_nothing_stored() -> None:
    assert CallEvent.objects.count() == 0
    assert Call.objects.count() == 0


def test_signed_batch_is_stored_and_acknowledged(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    response = post(
        webhook,
        load_fixture("incoming_p2p_call.json"),
        token_issuer.bearer(),
        X_Microsoft_Skype_Message_ID="abc",
    )

    assert response.status_code == 202
    assert response.json() == {"stored": 1, "duplicates": 0}
    event = CallEvent.objects.get()
    assert event.message_id == "abc"
    assert event.tenant_id == token_issuer.tenant_id
    assert Call.objects.get().state == "incoming"


def test_redelivered_batch_is_acknowledged_and_changes_nothing(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = load_fixture("incoming_p2p_call.json")
    post(webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m1")
    response = post(
        webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m1"
    )

    assert response.status_code == 202
    assert response.json() == {"stored": 0, "duplicates": 1}
    assert CallEvent.objects.count() == 1


def test_unsigned_post_is_refused(webhook: Client) -> None:
    response = post(webhook, load_fixture("incoming_p2p_call.json"), None)
    assert response.status_code == 401
    assert "Authorization" in response.json()["error"]["message"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("case", "make_token"),
    [
        (
            "forged signature",
            lambda i: i.mint_with(key=i.new_key()),
        ),
        (
            "expired",
            lambda i: i.mint(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        ),
        ("wrong audience", lambda i: i.mint(aud="someone-else")),
        ("wrong issuer", lambda i: i.mint(iss="https://evil.example")),
        ("unknown kid", lambda i: i.mint_with(kid="not-a-published-kid")),
        ("no kid", lambda i: i.mint_with(kid=OMIT)),
        ("no tenant", lambda i: i.mint(tid=OMIT)),
        ("not a jwt", lambda i: "garbage.token.here"),
    ],
)
def test_bad_token_is_refused_and_nothing_stored(
    webhook: Client, token_issuer: TestTokenIssuer, case: str, make_token: Any
) -> None:
    response = post(
        webhook,
        load_fixture("incoming_p2p_call.json"),
        f"Bearer {make_token(token_issuer)}",
    )
    assert response.status_code == 401, case
    assert response.json()["error"]["code"] == "unauthorized"
    assert_nothing_stored()


def test_wrong_scheme_is_refused(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    response = post(webhook, {"value": []}, f"Basic {token_issuer.mint()}")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "'value' array"),
        ('{"value": {}}', "'value' array"),
        ('{"value": [42]}', "value[0] must be an object"),
        ('{"value": [{"resourceUrl": "/communications/calls/x"}]}', "changeType"),
        ('{"value": [{"changeType": "updated"}]}', "neither resourceUrl nor resource"),
        (
            '{"value": [{"changeType": "updated", "resourceUrl": "/communications/users/x"}]}',
            "does not name a call",
        ),
        (
            json.dumps(
                {
                    "value": [
                        {
                            "changeType": "updated",
                            "resourceUrl": "/communications/calls/a/participants",
                            "resourceData": [{"id": "p", "isMuted": "perhaps"}],
                        }
                    ]
                }
            ),
            "isMuted must be a boolean",
        ),
    ],
)
def test_signed_malformed_body_is_refused_with_its_problem_named(
    webhook: Client, token_issuer: TestTokenIssuer, body: str, complaint: str
) -> None:
    response = post(webhook, body, token_issuer.bearer())
    assert response.status_code == 400
    assert complaint in response.json()["error"]["message"]
    assert_nothing_stored()


def test_one_malformed_notification_refuses_the_whole_batch(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = load_fixture("incoming_p2p_call.json")
    body["value"].append({"changeType": "updated"})
    response = post(webhook, body, token_issuer.bearer())
    assert response.status_code == 400
    assert "value[1]" in response.json()["error"]["message"]
    assert_nothing_stored()


def test_get_is_not_allowed(webhook: Client) -> None:
    assert webhook.get(URL).status_code == 405


def test_meeting_roster_through_the_webhook(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    for i, name in enumerate(
        [
            "meeting_join_established.json",
            "roster_two_join.json",
            "roster_lee_muted.json",
        ]
    ):
        response = post(
            webhook,
            load_fixture(name),
            token_issuer.bearer(),
            X_Microsoft_Skype_Message_ID=str(i),
        )
        assert response.status_code == 202
    assert Participant.objects.filter(left_at__isnull=True).count() == 3
    assert Participant.objects.filter(is_muted=True).count() == 1


def test_keys_are_fetched_once_for_many_notifications(
    webhook: Client, token_issuer: TestTokenIssuer, jwks_server: JwksServer
) -> None:
    for i in range(5):
        post(
            webhook,
            load_fixture("call_established.json"),
            token_issuer.bearer(),
            X_Microsoft_Skype_Message_ID=str(i),
        )
    assert jwks_server.jwks_fetches == 1


def test_unreachable_signing_keys_answer_503_so_the_platform_retries(
    webhook: Client, token_issuer: TestTokenIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.stop()
    response = post(
        webhook, load_fixture("incoming_p2p_call.json"), token_issuer.bearer()
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "signing_keys_unavailable"
    assert_nothing_stored()
