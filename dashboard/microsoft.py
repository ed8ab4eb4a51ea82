"""Sign in with Microsoft: the two views around Entra ID's authorization-code flow
(``callbot/graph/user_signin.py`` speaks to Entra ID), and who a person becomes.

``/accounts/microsoft/`` keeps msal's flow (state, nonce, PKCE verifier) in the
session and sends the browser to Entra ID's authorize page;
``/accounts/microsoft/callback`` redeems the answer. The role comes from the
id_token's app roles and group ids through ``ENTRA_ROLE_MAP`` (the highest mapped
role wins) and is set again at every sign-in, so a role removed in Entra ID is
gone at the next one; a person with no mapped role is refused. The Callbot user is
found by the account's object id (``MicrosoftAccount``), made at the first
sign-in with no usable password. Sign-ins are audited as the local sign-in's are
(``sign_in``, with ``{"method": "microsoft"}``); refusals as failed ones, with why.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from callbot.calls import audit
from callbot.graph.factory import get_user_signin
from callbot.graph.user_signin import SignedInUser, SignInError
from dashboard.auditlog import SIGN_IN, client_ip
from dashboard.models import MicrosoftAccount
from dashboard.permissions import Role
from dashboard.roles import set_role

logger = logging.getLogger(__name__)

FLOW_KEY = "microsoft_signin_flow"
NEXT_KEY = "microsoft_signin_next"
METHOD = {"method": "microsoft"}
_RANK = {"admin": Role.ADMIN, "supervisor": Role.SUPERVISOR, "auditor": Role.AUDITOR}
_ORDER = [Role.ADMIN, Role.SUPERVISOR, Role.AUDITOR]


class SignInView(LoginView):
    """Django's sign-in page, offering Microsoft too when it is on."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["microsoft_signin"] = settings.ENTRA_SIGNIN_ENABLED
        return context


def role_for(person: SignedInUser) -> Role | None:
    """The highest Callbot role the person's app roles or groups map to."""
    mapping: dict[str, str] = settings.ENTRA_ROLE_MAP
    found = {_RANK[mapping[c]] for c in (*person.roles, *person.groups) if c in mapping}
    return next((role for role in _ORDER if role in found), None)


def _user_for(person: SignedInUser, role: Role) -> AbstractUser:
    """The linked user, made on the first sign-in; its role set from the token."""
    model = get_user_model()
    with transaction.atomic():
        link = (
            MicrosoftAccount.objects.select_related("user")
            .select_for_update()
            .filter(object_id=person.object_id)
            .first()
        )
        if link is None:
            base = (person.username or person.object_id)[:140]
            username = base
            if model.objects.filter(username=username).exists():
                # A local account of that name stays its owner's.
                username = f"{base[:130]}#{person.object_id[:8]}"
            user = model.objects.create_user(username=username, email=person.username)
            user.set_unusable_password()
            link = MicrosoftAccount(
                user=user, object_id=person.object_id, tenant_id=person.tenant_id
            )
        user = link.user
        assert isinstance(user, AbstractUser)  # noqa: S101 (narrowing for mypy)
        user.first_name = person.name[:150]
        user.save()
        link.username = person.username[:255]
        link.last_sign_in_at = timezone.now()
        link.save()
        set_role(user, role)
    return user


def _refuse(
    request: HttpRequest, code: str, message: str, who: str = ""
) -> HttpResponse:
    audit.record(
        AnonymousUser(),
        SIGN_IN,
        who[:150],
        outcome="failed",
        detail={**METHOD, "reason": code},
        client_ip=client_ip(request),
        actor_name=who[:150] or "anonymous",
    )
    logger.warning("Microsoft sign-in refused: %s (%s)", code, who or "unknown")
    return render(
        request,
        "registration/microsoft_refused.html",
        {"message": message},
        status=403,
    )


@require_GET
def start(request: HttpRequest) -> HttpResponse:
    """Send the browser to Entra ID's sign-in page."""
    if not settings.ENTRA_SIGNIN_ENABLED:
        return HttpResponse("Sign in with Microsoft is off.", status=404)
    redirect_uri = request.build_absolute_uri(reverse("microsoft-callback"))
    try:
        flow = get_user_signin().start(redirect_uri)
    except SignInError as exc:
        return _refuse(request, exc.code, "Microsoft sign-in is unavailable.")
    request.session[FLOW_KEY] = flow
    next_url = request.GET.get("next", "")
    if url_has_allowed_host_and_scheme(
        next_url, {request.get_host()}, require_https=request.is_secure()
    ):
        request.session[NEXT_KEY] = next_url
    return HttpResponseRedirect(flow["auth_uri"])


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Entra ID's answer: sign the person in with the mapped role, or refuse."""
    if not settings.ENTRA_SIGNIN_ENABLED:
        return HttpResponse("Sign in with Microsoft is off.", status=404)
    flow = request.session.pop(FLOW_KEY, None)
    next_url = request.session.pop(NEXT_KEY, "") or settings.LOGIN_REDIRECT_URL
    if not flow:
        return _refuse(request, "no_flow", "The sign-in expired; please start again.")
    try:
        person = get_user_signin().finish(flow, request.GET.dict())
    except SignInError as exc:
        return _refuse(request, exc.code, f"Microsoft refused the sign-in: {exc}")
    role = role_for(person)
    if role is None:
        return _refuse(
            request,
            "no_role",
            "Your Microsoft account has no Callbot role; ask an admin to assign "
            "one in Entra ID.",
            person.username,
        )
    user = _user_for(person, role)
    if not user.is_active:
        return _refuse(request, "inactive", "This account is disabled.", user.username)
    request.signin_detail = METHOD  # type: ignore[attr-defined]
    login(
        request,
        user,  # type: ignore[arg-type]
        backend="django.contrib.auth.backends.ModelBackend",
    )
    return HttpResponseRedirect(next_url)
