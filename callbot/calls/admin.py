"""Django admin for the calls domain. Calls, their participants and actions, call
events, quarantined notifications, audit entries and checkpoints are read-only
here, for superusers too: they are the record of what happened and who asked for
it, written only by the webhook and the action path (an action added here could
name anyone as its requester). Dropping call content is ``manage.py purge``'s
job, which seals the audit trail first (docs/audit.md). Meetings, alert settings
and redirect targets are configuration and stay editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from callbot.calls.alertmodels import Alert, AlertSettings
from callbot.calls.models import (
    Action,
    AuditCheckpoint,
    AuditEntry,
    Call,
    CallEvent,
    InboxBatch,
    Meeting,
    Participant,
    QuarantinedNotification,
    Recording,
    RedirectTarget,
)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "__str__",
        "starts_at",
        "ends_at",
        "organizer_id",
        "join_meeting_id",
    ]
    search_fields = ["subject", "thread_id", "join_meeting_id", "organizer_id"]
    date_hierarchy = "starts_at"


class ParticipantInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Participant
    extra = 0
    fields = (
        "display_name",
        "identity_kind",
        "is_bot",
        "is_muted",
        "is_in_lobby",
        "is_sharing_screen",
        "joined_at",
        "left_at",
    )
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = [
        "graph_id",
        "kind",
        "direction",
        "state",
        "source_display",
        "subject",
        "created_at",
        "terminated_at",
    ]
    list_filter = ["state", "kind", "direction"]
    search_fields = ["graph_id", "source_display", "subject"]
    readonly_fields = [
        "graph_key",
        "version",
        "event_count",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["meeting"]
    inlines = [ParticipantInline]


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "call",
        "identity_kind",
        "is_muted",
        "is_in_lobby",
        "joined_at",
        "left_at",
    ]
    list_filter = ["identity_kind", "is_muted", "is_bot"]
    search_fields = ["display_name", "identity_id", "graph_id"]
    raw_id_fields = ["call"]


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "call",
        "sequence",
        "change_type",
        "resource_kind",
        "applied",
    ]
    list_filter = ["resource_kind", "change_type", "applied"]
    search_fields = ["resource_url", "message_id"]
    raw_id_fields = ["call"]


@admin.register(QuarantinedNotification)
class QuarantinedNotificationAdmin(ReadOnlyAdmin):
    """Notifications Graph sent that were kept but not applied, and why."""

    list_display = [
        "received_at",
        "reason",
        "problem",
        "change_type",
        "resource_url",
        "message_id",
        "position",
    ]
    list_filter = ["reason", "change_type"]
    search_fields = ["resource_url", "message_id", "error", "digest"]
    date_hierarchy = "received_at"

    @admin.display(description="error")
    def problem(self, obj: QuarantinedNotification) -> str:
        return obj.error if len(obj.error) <= 120 else obj.error[:119] + "…"


@admin.register(InboxBatch)
class InboxBatchAdmin(ReadOnlyAdmin):
    """Batches the webhook stored and has not applied yet (``WEBHOOK_APPLY =
    "deferred"``): a queue that empties itself, and the rows set aside with the
    error that stopped them (docs/ingest.md)."""

    list_display = ["id", "received_at", "notifications", "message_id", "error"]
    list_filter = [("error", admin.EmptyFieldListFilter)]
    search_fields = ["message_id", "error"]
    exclude = ["body"]


@admin.register(Action)
class ActionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "kind",
        "status",
        "call",
        "target",
        "requested_by",
        "result_code",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["target", "operation_id", "client_context"]
    raw_id_fields = ["call", "participant"]
    readonly_fields = [
        "client_request_id",
        "operation_key",
        "created_at",
        "sent_at",
        "completed_at",
        "updated_at",
    ]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "sequence",
        "created_at",
        "actor_name",
        "by_bot",
        "action",
        "target",
        "outcome",
        "client_ip",
    ]
    list_filter = ["outcome", "by_bot", "action"]
    search_fields = ["actor_name", "target", "action"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "created_at", "reason", "entry_count", "key_id"]
    list_filter = ["reason"]


@admin.register(Recording)
class RecordingAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "call", "action", "size", "audio"]
    raw_id_fields = ["call", "action"]


@admin.register(AlertSettings)
class AlertSettingsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The alert thresholds: one row (``AlertSettings.save`` keeps it the first)."""

    list_display = ["__str__", "ringing_seconds", "silent_minutes", "updated_at"]
    fieldsets = [
        ("Ringing", {"fields": ["ringing_enabled", "ringing_seconds"]}),
        ("Silent calls", {"fields": ["silent_enabled", "silent_minutes"]}),
        ("Workers", {"fields": ["worker_enabled", "worker_seconds"]}),
        (
            "Events",
            {
                "fields": [
                    "action_failed_enabled",
                    "bot_dropped_enabled",
                    "keep_alive_failed_enabled",
                    "expire_minutes",
                ]
            },
        ),
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_add_permission(request) and not (
            AlertSettings.objects.exists()
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["raised_at", "kind", "call_label", "count", "cleared_at"]
    list_filter = ["kind", ("cleared_at", admin.EmptyFieldListFilter)]
    search_fields = ["call_label", "message"]
    raw_id_fields = ["call"]


@admin.register(RedirectTarget)
class RedirectTargetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The saved targets the redirect control offers supervisors."""

    list_display = ["name", "kind", "value", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "value"]
