"""The Graph webhook: tokens checked against a JWKS served over real HTTP; bad
tokens and bodies that are not a batch refused with nothing stored; good batches
stored and 202, a notification that cannot be applied quarantined, never its batch."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.test import Client

import pytest

from callbot.calls.models import (
    Call,
    CallEvent,
    Participant,
    QuarantinedNotification,
)
from tests.conftest import load_fixture
from tests.support.asgi import asgi_request
from tests.support.jwt import OMIT, JwksServer, TestTokenIssuer
from tests.support.webhook import URL, counts, post

pytestmark = pytest.mark.django_db


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
    assert counts(response.json()) == {"stored": 1, "duplicates": 0, "quarantined": 0}
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
    assert counts(response.json()) == {"stored": 0, "duplicates": 1, "quarantined": 0}
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
        ('{"value": [1, 2', "not valid JSON"),
    ],
)
def test_signed_body_that_is_not_a_batch_is_refused_with_its_problem_named(
    webhook: Client, token_issuer: TestTokenIssuer, body: str, complaint: str
) -> None:
    response = post(webhook, body, token_issuer.bearer())
    assert response.status_code == 400
    assert complaint in response.json()["error"]["message"]
    assert_nothing_stored()
    assert QuarantinedNotification.objects.count() == 0


@pytest.mark.parametrize(
    ("notification", "complaint"),
    [
        (42, "value[0] must be an object"),
        ({"resourceUrl": "/communications/calls/x"}, "changeType"),
        ({"changeType": "updated"}, "neither resourceUrl nor resource"),
        (
            {"changeType": "updated", "resourceUrl": "/communications/users/x"},
            "does not name a call",
        ),
        (
            {
                "changeType": "updated",
                "resourceUrl": "/communications/calls/a/participants",
                "resourceData": [{"id": "p", "isMuted": "perhaps"}],
            },
            "isMuted must be a boolean",
        ),
        (
            {
                "changeType": "updated",
                "resourceUrl": "/communications/calls/a",
                "resourceData": {"id": "a", "state": 12345},
            },
            "state must be a string",
        ),
    ],
)
def test_signed_malformed_notification_is_quarantined_with_its_problem_named(
    webhook: Client, token_issuer: TestTokenIssuer, notification: Any, complaint: str
) -> None:
    response = post(webhook, {"value": [notification]}, token_issuer.bearer())

    assert response.status_code == 202
    assert counts(response.json()) == {"stored": 0, "duplicates": 0, "quarantined": 1}
    assert_nothing_stored()
    kept = QuarantinedNotification.objects.get()
    assert kept.reason == "malformed"
    assert complaint in kept.error
    assert json.loads(kept.payload) == notification


def test_one_malformed_notification_is_quarantined_and_the_rest_applied(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = load_fixture("incoming_p2p_call.json")
    body["value"].append({"changeType": "updated"})
    response = post(
        webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m"
    )

    assert response.status_code == 202
    assert counts(response.json()) == {"stored": 1, "duplicates": 0, "quarantined": 1}
    assert Call.objects.get().state == "incoming"
    kept = QuarantinedNotification.objects.get()
    assert (kept.position, kept.message_id) == (1, "m")
    assert "value[1]" in kept.error


def test_notification_redelivered_in_another_batch_is_stored_once(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    post(
        webhook,
        load_fixture("incoming_p2p_call.json"),
        token_issuer.bearer(),
        X_Microsoft_Skype_Message_ID="m1",
    )
    body = load_fixture("incoming_p2p_call.json")
    body["value"].extend(load_fixture("call_established.json")["value"])

    response = post(
        webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m2"
    )

    assert counts(response.json()) == {"stored": 1, "duplicates": 1, "quarantined": 0}
    assert CallEvent.objects.count() == 2
    assert Call.objects.get().state == "established"


def test_redelivered_malformed_notification_is_quarantined_once(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = {"value": [{"changeType": "updated"}]}
    post(webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m")
    again = post(
        webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m2"
    )

    assert counts(again.json()) == {"stored": 0, "duplicates": 1, "quarantined": 0}
    assert QuarantinedNotification.objects.count() == 1


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


def large_meetings_batch(meetings: int, people: int) -> dict[str, Any]:
    """Full rosters of ``meetings`` meetings of ``people`` each, in one batch."""
    template = load_fixture("roster_two_join.json")["value"][0]
    person = template["resourceData"][0]
    value = []
    for m in range(meetings):
        call_id = f"{m:08x}-9e8d-4c7b-a6f5-e4d3c2b1a098"
        roster = []
        for i in range(people):
            entry = copy.deepcopy(person)
            entry["id"] = f"{m:08x}-{i:04x}-4a2b-9c1d-0e9f8a7b6c5d"
            entry["info"]["identity"]["user"]["displayName"] = f"Person {m}.{i}"
            roster.append(entry)
        value.append(
            {
                **template,
                "resource": f"/app/calls/{call_id}/participants",
                "resourceUrl": f"/communications/calls/{call_id}/participants",
                "resourceData": roster,
            }
        )
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": value}


def test_batch_larger_than_djangos_upload_limit_is_applied(
    webhook: Client, token_issuer: TestTokenIssuer, settings: Any
) -> None:
    body = json.dumps(large_meetings_batch(meetings=3, people=1500))
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = post(
        webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="big"
    )

    assert response.status_code == 202
    assert counts(response.json()) == {"stored": 3, "duplicates": 0, "quarantined": 0}
    assert Participant.objects.filter(left_at__isnull=True).count() == 3 * 1500


def test_batch_past_webhook_max_bytes_is_refused_with_413(
    webhook: Client, token_issuer: TestTokenIssuer, settings: Any
) -> None:
    settings.WEBHOOK_MAX_BYTES = 20_000
    body = json.dumps(large_meetings_batch(meetings=1, people=40))
    assert len(body) > settings.WEBHOOK_MAX_BYTES

    response = post(webhook, body, token_issuer.bearer())
    unsigned = post(webhook, body, None)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "20000 bytes" in response.json()["error"]["message"]
    assert unsigned.status_code == 401  # the token is checked before the body is read
    assert_nothing_stored()


def test_django_upload_limit_still_guards_other_views(
    client: Client, settings: Any
) -> None:
    body = "username=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = client.post(
        "/accounts/login/", data=body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400


def asgi_post(body: bytes, auth: str) -> tuple[int, Any]:
    """POST ``body`` through Django's ASGI handler (what daphne runs) in chunks and
    with no Content-Length, as a chunked request arrives."""
    answer = asgi_request("POST", URL, body, auth=auth, chunk=65536, app=ASGIHandler())
    return answer.status, answer.json()


@pytest.mark.django_db(transaction=True)
def test_chunked_batch_is_read_past_djangos_limit_and_held_to_ours(
    webhook: Client, token_issuer: TestTokenIssuer, settings: Any
) -> None:
    body = json.dumps(large_meetings_batch(meetings=3, people=1500)).encode()
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    status, answer = asgi_post(body, token_issuer.bearer())
    assert (status, counts(answer)["stored"]) == (202, 3)

    settings.WEBHOOK_MAX_BYTES = len(body) - 1
    status, answer = asgi_post(body, token_issuer.bearer())
    assert (status, answer["error"]["code"]) == (413, "payload_too_large")
