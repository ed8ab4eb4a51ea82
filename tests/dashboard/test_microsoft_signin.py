"""Who a Microsoft sign-in becomes: the mapped role, the linked user, refusals
audited. Entra ID is replaced by a stand-in that returns a chosen person."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest

from callbot.calls.models import AuditEntry
from callbot.graph.user_signin import SignedInUser, SignInError
from dashboard import microsoft
from dashboard.models import MicrosoftAccount
from dashboard.permissions import role_of

pytestmark = pytest.mark.django_db

TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"


def person(**changes: Any) -> SignedInUser:
    values: dict[str, Any] = {
        "object_id": "oid-1",
        "tenant_id": TENANT,
        "name": "Dana Ruiz",
        "username": "dana@contoso.example",
        "roles": ("Callbot.Supervisor",),
        "groups": (),
    }
    return SignedInUser(**{**values, **changes})


class StandIn:
    def __init__(self, answer: SignedInUser | SignInError) -> None:
        self.answer = answer

    def start(self, redirect_uri: str) -> dict[str, Any]:
        return {"auth_uri": "https://login.example/authorize", "redirect": redirect_uri}

    def finish(self, flow: dict[str, Any], params: dict[str, str]) -> SignedInUser:
        if isinstance(self.answer, SignInError):
            # A fresh one: a raised parameter would keep this request's frames.
            raise SignInError(self.answer.code, self.answer.message)
        return self.answer


def signed_in(
    monkeypatch: pytest.MonkeyPatch, answer: SignedInUser | SignInError
) -> tuple[Client, Any]:
    monkeypatch.setattr(microsoft, "get_user_signin", lambda: StandIn(answer))
    client = Client()
    started = client.get("/accounts/microsoft/?next=/history/")
    assert started.status_code == 302
    assert started["Location"] == "https://login.example/authorize"
    return client, client.get("/accounts/microsoft/callback?code=c&state=s")


def test_the_highest_mapped_role_wins_and_is_set_again_each_sign_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    both = person(roles=("Callbot.Auditor", "Callbot.Admin"))
    _, answer = signed_in(monkeypatch, both)
    assert answer.status_code == 302
    assert answer["Location"] == "/history/"
    link = MicrosoftAccount.objects.get(object_id="oid-1")
    assert role_of(link.user) == "Admin"
    assert link.user.is_staff
    assert not link.user.has_usable_password()

    _, again = signed_in(monkeypatch, person(roles=("Callbot.Auditor",)))
    assert again.status_code == 302
    link.user.refresh_from_db()
    assert role_of(link.user) == "Auditor"
    assert not link.user.is_staff
    assert MicrosoftAccount.objects.count() == 1
    entry = AuditEntry.objects.filter(action="sign_in").latest("pk")
    assert (entry.outcome, entry.detail) == ("succeeded", {"method": "microsoft"})


def test_a_local_account_of_the_same_name_is_never_taken_over(
    monkeypatch: pytest.MonkeyPatch, django_user_model: Any
) -> None:
    local = django_user_model.objects.create_user(
        "dana@contoso.example", password="local-pw-123"
    )
    client, answer = signed_in(monkeypatch, person())
    assert answer.status_code == 302
    link = MicrosoftAccount.objects.get()
    assert link.user != local
    assert link.user.username.startswith("dana@contoso.example#")
    assert client.session["_auth_user_id"] == str(link.user.pk)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (person(roles=()), "no_role"),
        (SignInError("wrong_tenant", "another tenant"), "wrong_tenant"),
        (SignInError("access_denied", "the person cancelled"), "access_denied"),
    ],
)
def test_refusals_are_403_and_audited_as_failed_sign_ins(
    monkeypatch: pytest.MonkeyPatch, answer: Any, reason: str
) -> None:
    client, response = signed_in(monkeypatch, answer)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session
    entry = AuditEntry.objects.filter(action="sign_in").latest("pk")
    assert entry.outcome == "failed"
    assert entry.detail == {"method": "microsoft", "reason": reason}


def test_a_callback_without_a_started_flow_is_refused() -> None:
    assert Client().get("/accounts/microsoft/callback?code=x").status_code == 403


def test_the_sign_in_page_offers_microsoft_only_when_it_is_on(settings: Any) -> None:
    settings.ENTRA_SIGNIN_ENABLED = True
    assert b"Sign in with Microsoft" in Client().get("/accounts/login/").content
    settings.ENTRA_SIGNIN_ENABLED = False
    assert b"Sign in with Microsoft" not in Client().get("/accounts/login/").content
    assert Client().get("/accounts/microsoft/").status_code == 404
