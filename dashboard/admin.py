"""The links between Microsoft accounts and Callbot users, for admins to see (and
to remove: the person's next sign-in makes a new user)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from dashboard.models import MicrosoftAccount


@admin.register(MicrosoftAccount)
class MicrosoftAccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["username", "user", "object_id", "last_sign_in_at"]
    search_fields = ["username", "object_id", "user__username"]
    readonly_fields = [
        "user",
        "object_id",
        "tenant_id",
        "username",
        "created_at",
        "last_sign_in_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
