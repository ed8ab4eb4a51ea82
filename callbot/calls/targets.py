"""Saved redirect targets: the people and numbers supervisors send ringing calls to.

Admins keep the list in the Django admin; the redirect control offers it, and a
redirect names an entry by its id (``params.redirect``) instead of typing an
Azure AD object id or a phone number. Imports nothing of ours but the contract's
patterns, so ``models.py`` can register the model without a circle.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from callbot.graph.limits import E164_PATTERN, GUID_PATTERN


class RedirectTarget(models.Model):
    """A Teams user or a phone number a ringing call can be redirected to."""

    class Kind(models.TextChoices):
        USER = "user", "Teams user"
        PHONE = "phone", "Phone number"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value = models.CharField(
        max_length=64,
        help_text="The user's Azure AD object id (a GUID), or the number as +E.164.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "calls"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: object, **kwargs: object) -> None:
        # Object ids compare case-insensitively; store them as the cleaner writes them.
        self.value = self.value.strip()
        if self.kind == self.Kind.USER:
            self.value = self.value.lower()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> None:
        super().clean()
        value = self.value.strip()
        if self.kind == self.Kind.USER and not GUID_PATTERN.fullmatch(value):
            raise ValidationError({"value": "Write an Azure AD object id (a GUID)."})
        if self.kind == self.Kind.PHONE and not E164_PATTERN.fullmatch(value):
            raise ValidationError(
                {"value": "Write the number in +E.164 form, e.g. +14255550199."}
            )

    def target(self) -> dict[str, str]:
        """The target in ``params.clean_target``'s input shape."""
        key = "user_id" if self.kind == self.Kind.USER else "phone"
        return {key: self.value, "display_name": self.name}

    def shape(self) -> dict[str, object]:
        """The entry as the redirect control lists it."""
        return {"id": self.pk, "name": self.name, "kind": self.kind}
