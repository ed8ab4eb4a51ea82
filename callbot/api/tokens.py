"""Making and revoking API tokens; both are audit entries. The key is returned
once by ``create_token`` and stored only as its digest."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from callbot.api.models import ApiToken, new_token_key, token_digest
from callbot.calls import audit


def create_token(
    user: User, *, name: str = "", by: str = "manage.py"
) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its key (shown to whoever asked, then gone)."""
    key = new_token_key()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, digest=token_digest(key), prefix=key[:12]
        )
        audit.record(
            None,
            "api_token.created",
            user.get_username(),
            outcome="saved",
            detail={"token": token.prefix, "name": name},
            actor_name=by,
        )
    return token, key


def revoke_tokens(user: User, *, by: str = "manage.py") -> int:
    """Delete every token of ``user``; how many there were."""
    with transaction.atomic():
        prefixes = list(
            ApiToken.objects.filter(user_id=user.pk).values_list("prefix", flat=True)
        )
        ApiToken.objects.filter(user_id=user.pk).delete()
        if prefixes:
            audit.record(
                None,
                "api_token.revoked",
                user.get_username(),
                outcome="deleted",
                detail={"tokens": prefixes},
                actor_name=by,
            )
    return len(prefixes)
