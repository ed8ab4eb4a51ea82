"""What the API reads and writes, as DRF serializers (and so the OpenAPI schema).

Output serializers describe rows and the dashboard's read shapes; input
serializers only parse: the services (``calls.services``, ``calls.meetings``) do
the checking, with the same refusals the pages show.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from callbot.calls import kinds, live
from callbot.calls.models import Action, Alert, AuditEntry, Call, Meeting, Recording
from callbot.calls.services import holds_nul
from callbot.calls.states import CallDirection, CallKind, CallOutcome
from dashboard.history_query import Sort

# --- calls -------------------------------------------------------------------------


class CallRowSerializer(serializers.Serializer[Any]):
    """One call of the list, as the history shows and exports it."""

    id = serializers.IntegerField()
    graph_id = serializers.CharField()
    kind = serializers.CharField()
    subject = serializers.CharField()
    caller = serializers.CharField()
    caller_id = serializers.CharField()
    direction = serializers.CharField()
    started_at = serializers.DateTimeField()
    duration_seconds = serializers.IntegerField()
    state = serializers.CharField()
    outcome = serializers.CharField()
    result = serializers.CharField()
    participants = serializers.IntegerField()
    actions = serializers.SerializerMethodField()
    actors = serializers.ListField(child=serializers.CharField())
    recordings = serializers.IntegerField()
    ivr_path = serializers.CharField()

    def get_actions(self, row: Any) -> dict[str, int]:
        """Action kinds asked on the call and how many times each."""
        return dict(row.actions)


class CallListFilterSerializer(serializers.Serializer[Any]):
    """The history page's filters (``dashboard.history.HistoryForm``), documented;
    the form itself reads them."""

    q = serializers.CharField(required=False, help_text="Search: name, id, number.")
    period = serializers.ChoiceField(
        required=False, choices=["today", "yesterday", "7d"]
    )
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    kind = serializers.ChoiceField(required=False, choices=CallKind.values)
    direction = serializers.ChoiceField(required=False, choices=CallDirection.values)
    outcome = serializers.ChoiceField(required=False, choices=CallOutcome.values)
    min_duration = serializers.IntegerField(required=False, min_value=0)
    max_duration = serializers.IntegerField(required=False, min_value=0)
    actor = serializers.CharField(
        required=False, help_text="Who acted: a username (or a user's id)."
    )
    action = serializers.ChoiceField(required=False, choices=Action.Kind.values)
    recording = serializers.ChoiceField(required=False, choices=["yes", "no"])
    ivr = serializers.CharField(required=False, help_text="sales or menu:1")
    sort = serializers.ChoiceField(required=False, choices=[s.value for s in Sort])
    tz = serializers.CharField(required=False, help_text="IANA zone for dates.")
    cursor = serializers.CharField(required=False)


class CallSerializer(serializers.ModelSerializer[Call]):
    meeting: serializers.PrimaryKeyRelatedField[Any] = (
        serializers.PrimaryKeyRelatedField(read_only=True)
    )

    class Meta:
        model = Call
        fields = [
            "id",
            "graph_id",
            "tenant_id",
            "direction",
            "kind",
            "state",
            "outcome",
            "subject",
            "source_display",
            "source_id",
            "meeting",
            "my_participant_id",
            "media_state_audio",
            "result_code",
            "result_subcode",
            "result_message",
            "duration_seconds",
            "version",
            "created_at",
            "established_at",
            "terminated_at",
            "waiting_since",
        ]
        read_only_fields = fields


class ChangeSerializer(serializers.Serializer[Any]):
    """A timeline line (``dashboard.timeline.Entry``)."""

    at = serializers.DateTimeField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field's name
    id = serializers.IntegerField()
    text = serializers.CharField()
    status = serializers.CharField()
    actor = serializers.CharField()
    by_bot = serializers.BooleanField()
    digits = serializers.CharField()
    recording_id = serializers.IntegerField(allow_null=True)
    raw = serializers.JSONField(allow_null=True)


class PersonSerializer(serializers.Serializer[Any]):
    """Someone who was on the call (``timeline_reads.PersonHistory``)."""

    participant_id = serializers.CharField(source="participant.graph_id")
    name = serializers.CharField()
    identity_kind = serializers.CharField(source="participant.identity_kind")
    identity_id = serializers.CharField(source="participant.identity_id")
    role = serializers.CharField(source="participant.role")
    is_bot = serializers.BooleanField(source="participant.is_bot")
    is_muted = serializers.BooleanField(source="participant.is_muted")
    joined_at = serializers.DateTimeField()
    left_at = serializers.DateTimeField(allow_null=True)
    left_why = serializers.CharField()
    changes = ChangeSerializer(many=True)


class TimelinePageSerializer(serializers.Serializer[Any]):
    entries = ChangeSerializer(many=True)
    older = serializers.CharField(help_text="Cursor for ?before= ('' at the start).")
    newer = serializers.CharField(help_text="Cursor for ?after= ('' at the end).")


# --- actions -----------------------------------------------------------------------


class ActionSerializer(serializers.ModelSerializer[Action]):
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    participant_id = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()

    class Meta:
        model = Action
        fields = [
            "id",
            "kind",
            "call",
            "participant_id",
            "target",
            "parameters",
            "status",
            "requested_by",
            "result_code",
            "result_subcode",
            "result_message",
            "error_code",
            "message",
            "attempts",
            "client_request_id",
            "created_at",
            "sent_at",
            "completed_at",
        ]
        read_only_fields = fields

    def get_participant_id(self, action: Action) -> str:
        return str((action.parameters or {}).get("participant_id", ""))

    def get_message(self, action: Action) -> str:
        """A failure (or the outcome) in a supervisor's words."""
        return live.action_message(action)


# What the call page and the place-call page may ask for (``kinds.BROWSER_KINDS``).
REQUESTABLE_KINDS = sorted(kinds.BROWSER_KINDS | {Action.Kind.PLACE_CALL.value})


class ActionRequestSerializer(serializers.Serializer[Any]):
    """Ask for an action, as the call page's controls do over the socket."""

    kind = serializers.ChoiceField(choices=REQUESTABLE_KINDS)
    call = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    participant = serializers.CharField(
        required=False, allow_blank=True, max_length=128
    )
    params = serializers.DictField(required=False, default=dict)

    def validate_params(self, value: dict[str, Any]) -> dict[str, Any]:
        if holds_nul(value):
            raise serializers.ValidationError("Text may not hold NUL characters.")
        return value


# --- meetings ----------------------------------------------------------------------


class MeetingSerializer(serializers.ModelSerializer[Meeting]):
    class Meta:
        model = Meeting
        fields = [
            "id",
            "subject",
            "join_web_url",
            "thread_id",
            "organizer_id",
            "tenant_id",
            "join_meeting_id",
            "starts_at",
            "ends_at",
            "auto_join",
            "leave_at_end",
            "joined_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MeetingWriteSerializer(serializers.Serializer[Any]):
    """Store a meeting by its join link, or change its schedule."""

    subject = serializers.CharField(required=False, allow_blank=True, max_length=255)
    join_web_url = serializers.URLField(required=False, max_length=4000)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    auto_join = serializers.BooleanField(required=False)
    leave_at_end = serializers.BooleanField(required=False)


class JoinSerializer(serializers.Serializer[Any]):
    """Join a meeting by link, or by meeting id and passcode."""

    join_web_url = serializers.CharField(required=False, max_length=4000)
    join_meeting_id = serializers.CharField(required=False, max_length=32)
    passcode = serializers.CharField(required=False, allow_blank=True, max_length=64)
    again = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Join even though the bot is in this meeting already.",
    )


class JoinAgainSerializer(serializers.Serializer[Any]):
    again = serializers.BooleanField(required=False, default=False)


class JoinResultSerializer(serializers.Serializer[Any]):
    meeting = MeetingSerializer()
    action = ActionSerializer(allow_null=True)
    already_in = serializers.ListField(
        child=serializers.IntegerField(), help_text="The bot's live calls there."
    )


# --- recordings, audit, alerts ----------------------------------------------------


class RecordingSerializer(serializers.ModelSerializer[Recording]):
    action: serializers.PrimaryKeyRelatedField[Any] = (
        serializers.PrimaryKeyRelatedField(read_only=True)
    )
    call: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    content_type = serializers.SerializerMethodField()

    class Meta:
        model = Recording
        fields = ["id", "call", "action", "size", "content_type", "created_at"]
        read_only_fields = fields

    def get_content_type(self, recording: Recording) -> str:
        return "audio/wav"


class AuditEntrySerializer(serializers.ModelSerializer[AuditEntry]):
    call: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )

    class Meta:
        model = AuditEntry
        fields = [
            "sequence",
            "created_at",
            "actor_name",
            "by_bot",
            "action",
            "target",
            "call",
            "action_ref",
            "outcome",
            "detail",
            "client_ip",
            "entry_hash",
        ]
        read_only_fields = fields


class AuditFilterSerializer(serializers.Serializer[Any]):
    """The audit page's filters (``dashboard.audit_views.AuditFilterForm``)."""

    actor = serializers.CharField(required=False)
    by = serializers.ChoiceField(
        choices=["people", "bot"],
        required=False,
        help_text="Only people's acts, or only the bot's.",
    )
    action = serializers.CharField(required=False)
    outcome = serializers.CharField(required=False)
    call = serializers.IntegerField(required=False, min_value=1)
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)


class AlertSerializer(serializers.ModelSerializer[Alert]):
    call: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "call",
            "call_label",
            "message",
            "count",
            "raised_at",
            "last_raised_at",
            "cleared_at",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    role = serializers.CharField()
    can_view = serializers.BooleanField()
    can_act = serializers.BooleanField()
    can_listen = serializers.BooleanField()
    can_audit = serializers.BooleanField()
    auth = serializers.ChoiceField(choices=["token", "session"])
