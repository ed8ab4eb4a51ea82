"""Admin: API tokens (made here, the key shown once), webhook endpoints, and every
delivery with its attempts (read only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from callbot.api import webhooks
from callbot.api.models import (
    ApiToken,
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    new_token_key,
    token_digest,
)
from callbot.calls import audit, enqueue


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["prefix", "user", "name", "created_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["user__username", "name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A token is made or deleted (revoked); nothing about it is edited.
        return obj is None and super().has_change_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: ApiToken, form: Any, change: bool
    ) -> None:
        key = new_token_key()
        obj.digest = token_digest(key)
        obj.prefix = key[:12]
        super().save_model(request, obj, form, change)
        audit.record(
            request.user,
            "api_token.created",
            obj.user.get_username(),
            outcome="saved",
            detail={"token": obj.prefix, "name": obj.name},
            client_ip=request.META.get("REMOTE_ADDR"),
        )
        messages.warning(
            request,
            f"The new token's key, shown this once: {key} — copy it now; "
            "Callbot keeps only its digest.",
        )

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        self._revoked(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[ApiToken]
    ) -> None:
        self._revoked(request, list(queryset.select_related("user")))
        super().delete_queryset(request, queryset)

    def _revoked(self, request: HttpRequest, tokens: list[ApiToken]) -> None:
        for token in tokens:
            audit.record(
                request.user,
                "api_token.revoked",
                token.user.get_username(),
                outcome="deleted",
                detail={"tokens": [token.prefix]},
                client_ip=request.META.get("REMOTE_ADDR"),
            )


class WebhookEndpointForm(forms.ModelForm):  # type: ignore[type-arg]
    url = forms.URLField(max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "enabled"]

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            webhooks.resolve_target(url)
        except webhooks.UnsafeTargetError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = WebhookEndpointForm
    list_display = ["url", "description", "enabled", "created_at"]
    list_filter = ["enabled"]
    readonly_fields = ["secret", "previous_secret_until", "created_at"]
    fields = [
        "url",
        "description",
        "events",
        "enabled",
        "secret",
        "previous_secret_until",
        "created_at",
    ]
    actions = ["rotate_secret"]

    @admin.action(
        description="Rotate the signing secret (the old one signs beside it for a while)",
        permissions=["change"],
    )
    def rotate_secret(self, request: HttpRequest, queryset: Any) -> None:
        overlap = timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
        now = timezone.now()
        for endpoint in queryset:
            with transaction.atomic():
                endpoint.rotate_secret(overlap, now)
                audit.record(
                    request.user,
                    "webhook_secret.rotated",
                    endpoint.url,
                    outcome="saved",
                    client_ip=request.META.get("REMOTE_ADDR"),
                    detail={
                        "endpoint": endpoint.pk,
                        "previous_until": endpoint.previous_secret_until.isoformat()
                        if endpoint.previous_secret_until
                        else None,
                    },
                )
            self.log_change(request, endpoint, "Rotated the signing secret.")
        self.message_user(
            request,
            f"New secrets for {queryset.count()} endpoint(s), shown on each one's page. "
            f"Until {timezone.localtime(now + overlap):%Y-%m-%d %H:%M} every delivery "
            "is signed with the new and the old secret; move the receiver to the "
            "new one before then.",
            messages.SUCCESS,
        )


_ATTEMPT_FIELDS: tuple[str, ...] = (
    "number",
    "at",
    "status_code",
    "error",
    "duration_ms",
    "response_excerpt",
)


class WebhookAttemptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = _ATTEMPT_FIELDS
    readonly_fields = _ATTEMPT_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


_DELIVERY_FIELDS: tuple[str, ...] = (
    "message_id",
    "endpoint",
    "event",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "finished_at",
    "body",
)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "message_id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
    search_fields = ["message_id", "endpoint__url"]
    inlines = [WebhookAttemptInline]
    actions = ["retry_now"]
    fields = _DELIVERY_FIELDS
    readonly_fields = _DELIVERY_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Try once more now")
    def retry_now(
        self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]
    ) -> None:
        ids = list(
            queryset.exclude(status=DeliveryStatus.DELIVERED).values_list(
                "pk", flat=True
            )
        )
        # One more attempt each (a failed delivery fails again if it is refused).
        WebhookDelivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=timezone.now(),
            finished_at=None,
        )
        for delivery_id in ids:
            enqueue.send_on_commit(webhooks.DELIVER_WEBHOOK, delivery_id)
        messages.info(request, f"{len(ids)} deliveries will be tried again.")
