"""Sign-in throttling: repeated failures lock an account and an address for a
cool-off, the page says so in words, and every lock-out is in the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F
from django.test import Client

import pytest
from axes.models import AccessAttempt

from callbot.calls.models import AuditEntry
from tests.dashboard.conftest import PASSWORDS

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
HOME = "192.0.2.10"
ELSEWHERE = "198.51.100.20"


@pytest.fixture(autouse=True)
def _three_failures_lock(settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)


def sign_in(username: str, password: str, address: str = HOME) -> Any:
    return Client(REMOTE_ADDR=address).post(
        LOGIN, {"username": username, "password": password}
    )


def signed_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == "/"


def test_repeated_wrong_passwords_lock_the_account_and_refuse_the_right_one(
    bob: Any,
) -> None:
    first, second = sign_in("bob", "wrong-1"), sign_in("bob", "wrong-2")
    assert (first.status_code, second.status_code) == (200, 200)
    assert b"did not match" in second.content

    third = sign_in("bob", "wrong-3")
    assert third.status_code == 429
    assert b"Too many failed sign-ins" in third.content
    assert b"Try again in 15 minutes" in third.content
    assert b'name="username"' in third.content  # still the sign-in page

    refused = sign_in("bob", PASSWORDS["bob"])
    assert refused.status_code == 429
    assert "_auth_user_id" not in refused.wsgi_request.session
    # The account is locked wherever the attempt comes from.
    assert sign_in("bob", PASSWORDS["bob"], address=ELSEWHERE).status_code == 429

    entry = AuditEntry.objects.filter(action="sign_in_locked_out").order_by("pk")[0]
    assert (entry.actor, entry.actor_name, entry.client_ip) == (None, "bob", HOME)
    assert entry.outcome == "refused"
    assert entry.detail["failure_limit"] == 3


def test_failures_against_many_accounts_lock_the_address(bob: Any, carol: Any) -> None:
    for name in ("mallory", "trent", "victor"):
        sign_in(name, "guess")

    assert sign_in("carol", PASSWORDS["carol"]).status_code == 429
    assert signed_in(sign_in("carol", PASSWORDS["carol"], address=ELSEWHERE))
    assert AuditEntry.objects.filter(
        action="sign_in_locked_out", client_ip=HOME
    ).exists()


def test_after_the_cool_off_the_right_password_works_again(
    bob: Any, settings: Any
) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    for attempt in range(3):
        sign_in("bob", f"wrong-{attempt}")
    assert sign_in("bob", PASSWORDS["bob"]).status_code == 429

    # The cool-off passes: the failures are now older than it (moving them back
    # rather than sleeping keeps the test independent of how long a sign-in takes).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=2))

    assert signed_in(sign_in("bob", PASSWORDS["bob"]))


def test_a_success_before_the_limit_starts_the_count_again(bob: Any) -> None:
    sign_in("bob", "wrong-1")
    sign_in("bob", "wrong-2")
    assert signed_in(sign_in("bob", PASSWORDS["bob"]))
    sign_in("bob", "wrong-3")
    sign_in("bob", "wrong-4")
    assert signed_in(sign_in("bob", PASSWORDS["bob"]))
    assert not AuditEntry.objects.filter(action="sign_in_locked_out").exists()
