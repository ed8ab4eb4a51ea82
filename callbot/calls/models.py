"""The bot's domain: meetings, calls, their participants, events, actions and audit.

Only ``calls/ingest.py`` (what Microsoft tells us) and ``calls/services.py`` (what
users and the bot ask for) write these rows; everything else reads.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from callbot.calls.alertmodels import Alert, AlertKind, AlertSettings
from callbot.calls.auditmodels import AuditCheckpoint, AuditEntry
from callbot.calls.inboxmodels import InboxBatch

# A model of its own module, re-exported: this one stays small enough to read.
from callbot.calls.participant_changes import ParticipantChange
from callbot.calls.quarantinemodels import QuarantinedNotification
from callbot.calls.recordingmodels import Recording
from callbot.calls.states import ActionStatus, CallDirection, CallKind, CallState
from callbot.calls.summary import HISTORY_INDEXES, CallSummary
from callbot.calls.workermodels import WorkerHeartbeat
from callbot.graph import wire_json

__all__ = [
    "Action",
    "Alert",
    "AlertKind",
    "AlertSettings",
    "AuditCheckpoint",
    "AuditEntry",
    "Call",
    "CallEvent",
    "InboxBatch",
    "Meeting",
    "Participant",
    "ParticipantChange",
    "QuarantinedNotification",
    "Recording",
    "WorkerHeartbeat",
]

# Registered with this app from its own module (models.py is near its size limit).
from callbot.calls.targets import RedirectTarget as RedirectTarget


class Meeting(models.Model):
    """A Teams meeting's coordinates: everything needed to (re)join it (contract §10.3)."""

    subject = models.CharField(max_length=255, blank=True)
    join_web_url = models.TextField(blank=True)
    thread_id = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=64, blank=True, default="0")
    reply_chain_message_id = models.CharField(max_length=64, blank=True)
    organizer_id = models.CharField(max_length=64, blank=True)
    tenant_id = models.CharField(max_length=64, blank=True)
    online_meeting_id = models.CharField(max_length=255, blank=True)
    join_meeting_id = models.CharField(max_length=32, blank=True)
    passcode = models.CharField(max_length=64, blank=True)
    # tokenMeetingInfo from an invite: lets the bot rejoin that exact meeting.
    meeting_token = models.TextField(blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    # The bot joins by itself at ``starts_at`` (beat task ``join_due_meetings``).
    auto_join = models.BooleanField(default=False)
    # The bot hangs up its meeting call at ``ends_at``.
    leave_at_end = models.BooleanField(default=False)
    # Set when the scheduled join was requested, so it happens once.
    joined_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["thread_id"],
                condition=~Q(thread_id=""),
                name="meeting_thread_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gte=F("starts_at")),
                name="meeting_ends_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["starts_at"], name="meeting_starts_at_idx"),
            models.Index(
                fields=["starts_at"],
                condition=Q(auto_join=True, joined_at__isnull=True),
                name="meeting_due_join_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.thread_id or f"meeting {self.pk}"

    @property
    def can_join_by_coordinates(self) -> bool:
        """Joinable by chat thread and organizer; without them, only by
        ``join_meeting_id`` (and passcode)."""
        return bool(self.thread_id and self.organizer_id)


class Call(CallSummary):
    """One call leg of the bot, keyed by Graph's call id (its history summary
    columns and their upkeep: ``CallSummary``)."""

    graph_id = models.CharField(max_length=64)
    # Graph ids compare case-insensitively without dashes (contract conventions).
    graph_key = models.CharField(max_length=64, unique=True, editable=False)
    tenant_id = models.CharField(max_length=64, blank=True)
    direction = models.CharField(
        max_length=16, choices=CallDirection.choices, default=CallDirection.UNKNOWN
    )
    kind = models.CharField(
        max_length=16, choices=CallKind.choices, default=CallKind.PEER_TO_PEER
    )
    state = models.CharField(
        max_length=24, choices=CallState.choices, default=CallState.INCOMING
    )
    subject = models.CharField(max_length=255, blank=True)
    requested_modalities = models.JSONField(default=list, blank=True)
    source = models.JSONField(null=True, blank=True)
    source_display = models.CharField(max_length=255, blank=True)
    targets = models.JSONField(default=list, blank=True)
    callback_uri = models.TextField(blank=True)
    call_chain_id = models.CharField(max_length=64, blank=True)
    my_participant_id = models.CharField(max_length=64, blank=True)
    media_config_kind = models.CharField(max_length=16, blank=True)
    media_state_audio = models.CharField(max_length=16, blank=True)
    meeting = models.ForeignKey(
        Meeting, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    delta_roster = models.BooleanField(default=False)
    roster_sequence = models.BigIntegerField(default=0)
    last_tone_sequence = models.BigIntegerField(null=True, blank=True)
    last_tone = models.CharField(max_length=16, blank=True)
    result_code = models.IntegerField(null=True, blank=True)
    result_subcode = models.IntegerField(null=True, blank=True)
    result_message = models.TextField(blank=True)
    # Bumped once per applied change; the live protocol's per-call version.
    version = models.PositiveBigIntegerField(default=0)
    # Count of CallEvents stored; the next event's sequence is this plus one.
    event_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    established_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    last_notification_at = models.DateTimeField(null=True, blank=True)
    last_keep_alive_at = models.DateTimeField(null=True, blank=True)
    # Answered and held with music until a person takes it (services.set_waiting).
    waiting_since = models.DateTimeField(null=True, blank=True)
    # Waiting for a supervisor with a time limit (a call policy's hand-off while
    # it rings, an IVR supervisors step while held): when the wait ends, and what
    # Callbot does then, in words (services.set_wait_limit).
    wait_ends_at = models.DateTimeField(null=True, blank=True)
    wait_then = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state=CallState.TERMINATED) | Q(terminated_at__isnull=True),
                name="call_terminated_at_only_when_terminated",
            ),
        ]
        indexes = [
            # The live board: calls not yet terminated, newest first.
            models.Index(
                fields=["-created_at"],
                condition=~Q(state=CallState.TERMINATED),
                name="call_live_idx",
            ),
            # Reconciliation: live calls silent for too long.
            models.Index(
                fields=["state", "last_notification_at"], name="call_state_silence_idx"
            ),
            models.Index(fields=["meeting", "-created_at"], name="call_meeting_idx"),
            *HISTORY_INDEXES,
            # Reports: calls that ended in a range (the concurrency sweep's ends and
            # the calls still running when the range starts).
            models.Index(fields=["terminated_at"], name="call_terminated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} call {self.graph_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state != CallState.TERMINATED


class Participant(models.Model):
    """A roster entry of a group call or meeting. Leaving sets ``left_at``; rows stay."""

    class IdentityKind(models.TextChoices):
        USER = "user"
        APPLICATION = "application"
        APPLICATION_INSTANCE = "application_instance"
        PHONE = "phone"
        GUEST = "guest"
        ACS_USER = "acs_user"
        ON_PREMISES = "on_premises"
        ENCRYPTED = "encrypted"
        DEVICE = "device"
        UNKNOWN = "unknown"

    call = models.ForeignKey(
        Call, on_delete=models.CASCADE, related_name="participants"
    )
    graph_id = models.CharField(max_length=64)
    graph_key = models.CharField(max_length=64, editable=False)
    identity_kind = models.CharField(
        max_length=24, choices=IdentityKind.choices, default=IdentityKind.UNKNOWN
    )
    identity_id = models.CharField(max_length=128, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    identity_tenant_id = models.CharField(max_length=64, blank=True)
    role = models.CharField(max_length=24, blank=True)
    is_bot = models.BooleanField(default=False)
    is_muted = models.BooleanField(default=False)
    is_in_lobby = models.BooleanField(default=False)
    is_sharing_screen = models.BooleanField(default=False)
    on_hold = models.BooleanField(default=False)
    media_streams = models.JSONField(default=list, blank=True)
    roster_sequence = models.BigIntegerField(default=0)
    removed_reason = models.CharField(max_length=64, blank=True)
    # The digest of the roster entry this row last took (``rosters``): an entry
    # arriving again unchanged is skipped without being parsed. Empty when the
    # row last changed otherwise (left by absence, the call ended).
    entry_digest = models.CharField(max_length=32, blank=True, default="")
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["call", "graph_key"], name="participant_unique_per_call"
            ),
        ]
        indexes = [
            # The roster: present participants of a call.
            models.Index(
                fields=["call", "joined_at"],
                condition=Q(left_at__isnull=True),
                name="participant_present_idx",
            ),
            # The roster as it was, a keyset page at a time.
            models.Index(
                fields=["call", "joined_at", "id"], name="participant_roster_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.identity_id or self.graph_id

    @property
    def is_present(self) -> bool:
        return self.left_at is None


class CallEvent(models.Model):
    """One raw notification as received. Append-only."""

    call = models.ForeignKey(
        Call, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    # Per-call order of arrival (1, 2, ...); null only when no call could be named.
    sequence = models.PositiveBigIntegerField(null=True, blank=True)
    # Identity of the delivery: a redelivered notification has the same digest.
    digest = models.CharField(max_length=64, unique=True)
    change_type = models.CharField(max_length=16)
    resource_url = models.TextField()
    resource_kind = models.CharField(max_length=24)
    message_id = models.CharField(max_length=128, blank=True)
    tenant_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(encoder=wire_json.StorageEncoder)
    applied = models.BooleanField(default=False)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["call", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["call", "sequence"], name="call_event_sequence_unique"
            ),
        ]
        indexes = [models.Index(fields=["received_at"], name="call_event_received_idx")]

    def __str__(self) -> str:
        return f"{self.change_type} {self.resource_url}"


class Action(models.Model):
    """Something a user or the bot asked Graph to do, and how it went."""

    class Kind(models.TextChoices):
        ANSWER = "answer"
        REJECT = "reject"
        REDIRECT = "redirect"
        TRANSFER = "transfer"
        PLACE_CALL = "place_call"
        PLACE_GROUP_CALL = "place_group_call"
        JOIN_MEETING = "join_meeting"
        INVITE = "invite"
        MUTE_BOT = "mute_bot"
        UNMUTE_BOT = "unmute_bot"
        MUTE_PARTICIPANT = "mute_participant"
        REMOVE_PARTICIPANT = "remove_participant"
        HANG_UP = "hang_up"
        PLAY_PROMPT = "play_prompt"
        RECORD_RESPONSE = "record_response"
        CANCEL_MEDIA_PROCESSING = "cancel_media_processing"
        SUBSCRIBE_TO_TONE = "subscribe_to_tone"
        SEND_DTMF_TONES = "send_dtmf_tones", "Send DTMF Tones"
        START_HOLD_MUSIC = "start_hold_music"
        STOP_HOLD_MUSIC = "stop_hold_music"
        CHANGE_SCREEN_SHARING_ROLE = "change_screen_sharing_role"
        UPDATE_RECORDING_STATUS = "update_recording_status"
        KEEP_ALIVE = "keep_alive"
        CREATE_ONLINE_MEETING = "create_online_meeting"

    call = models.ForeignKey(
        Call, null=True, blank=True, on_delete=models.CASCADE, related_name="actions"
    )
    participant = models.ForeignKey(
        Participant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="actions",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    target = models.CharField(max_length=255, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=ActionStatus.choices, default=ActionStatus.QUEUED
    )
    # Reused on every retry so Graph can recognise a repeated request.
    client_request_id = models.UUIDField(default=uuid.uuid4, editable=False)
    client_context = models.CharField(max_length=256, blank=True)
    operation_id = models.CharField(max_length=64, blank=True)
    operation_key = models.CharField(max_length=64, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    # A worker holds the action until then; another may take it over afterwards
    # (the first worker died or its broker message was redelivered).
    claimed_until = models.DateTimeField(null=True, blank=True)
    result_code = models.IntegerField(null=True, blank=True)
    result_subcode = models.IntegerField(null=True, blank=True)
    result_message = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Acting on live calls is one permission, granted to the Admin and
        # Supervisor groups; viewing uses Django's view_* permissions.
        permissions = [("request_action", "Can act on live calls")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[ActionStatus.COMPLETED, ActionStatus.FAILED])
                | Q(completed_at__isnull=True),
                name="action_completed_at_only_when_final",
            ),
        ]
        indexes = [
            models.Index(fields=["call", "status"], name="action_call_status_idx"),
            # Reports: does this call have a (completed) action of this kind? One
            # index probe per call, no table row read.
            models.Index(
                fields=["call", "kind", "status"], name="action_call_kind_idx"
            ),
            models.Index(
                fields=["status", "created_at"], name="action_status_created_idx"
            ),
            # Operation notifications find their action by the normalised operation id.
            models.Index(
                fields=["operation_key"],
                condition=~Q(operation_key=""),
                name="action_operation_idx",
            ),
            # The history's "who acted" and "action kind" filters.
            models.Index(
                fields=["requested_by", "call"], name="action_history_actor_idx"
            ),
            models.Index(fields=["kind", "call"], name="action_history_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"
