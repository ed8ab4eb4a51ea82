"""The bot's own behaviour as data admins edit: prompts, incoming-call policies,
IVR flows, and the session of each call running a flow.

These rows configure and track the bot; the calls themselves are written only by
``callbot.calls`` (ingest and services).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from callbot.calls.models import Call
from callbot.graph.limits import ANSWER_WINDOW_SECONDS, E164_PATTERN, GUID_PATTERN
from callbot.ivr import audio, flows


def _prompt_upload_to(instance: Prompt, filename: str) -> str:
    return f"prompts/{instance.name}.wav"


class Prompt(models.Model):
    """A WAV prompt: an uploaded file under MEDIA_ROOT or a shipped static file.

    ``clean`` checks the audio is what Graph plays (mono, 16-bit, 16 kHz WAV; contract
    §6.9) and fills in ``duration_seconds`` and ``size_bytes``.
    """

    name = models.SlugField(
        max_length=64,
        unique=True,
        help_text="How flows refer to the prompt, e.g. menu.",
    )
    description = models.CharField(
        max_length=255, blank=True, help_text="What the prompt says."
    )
    audio = models.FileField(
        upload_to=_prompt_upload_to,
        blank=True,
        help_text="WAV, mono, 16-bit, 16 kHz, at most 60 s and 2 MB.",
    )
    static_path = models.CharField(
        max_length=255,
        blank=True,
        help_text="A shipped prompt under the static files, e.g. ivr/prompts/menu.wav.",
    )
    duration_seconds = models.FloatField(default=0, editable=False)
    size_bytes = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(audio="") & ~Q(static_path=""))
                | (~Q(audio="") & Q(static_path="")),
                name="prompt_one_source",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        has_audio, has_static = bool(self.audio), bool(self.static_path)
        if has_audio == has_static:
            raise ValidationError(
                "Upload a WAV file or name a shipped static file, not both or neither."
            )
        try:
            if has_audio:
                upload = self.audio.file
                upload.seek(0)
                info = audio.check_prompt_audio(upload, self.audio.size)
                upload.seek(0)
                self.size_bytes = self.audio.size
            else:
                found = finders.find(self.static_path)
                if not isinstance(found, str):
                    raise ValidationError(
                        {"static_path": f"No static file {self.static_path!r}."}
                    )
                with open(found, "rb") as stream:
                    stream.seek(0, 2)
                    size = stream.tell()
                    stream.seek(0)
                    info = audio.check_prompt_audio(stream, size)
                self.size_bytes = size
        except audio.PromptAudioError as exc:
            field = "audio" if has_audio else "static_path"
            raise ValidationError({field: str(exc)}) from exc
        self.duration_seconds = round(info.duration, 2)


class IvrFlow(models.Model):
    """An IVR menu as data: a start step id and a list of steps (see ``flows``)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    start = models.CharField(max_length=64, help_text="The id of the first step.")
    steps = models.JSONField(
        default=list,
        help_text=(
            "A list of steps, each with an id and a type: play, collect, record, "
            "transfer, redirect, invite or hang_up."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "IVR flow"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        from callbot.ivr.prompts import known_prompt_names

        try:
            flows.parse_flow(self.start, self.steps, known_prompt_names())
        except flows.FlowError as exc:
            raise ValidationError({"steps": exc.problems}) from exc

    def parsed(self) -> flows.Flow:
        """The typed flow (prompt names are checked in ``clean``, not here)."""
        return flows.parse_flow(self.start, self.steps)


class CallPolicy(models.Model):
    """What the bot does with a new incoming call: the enabled policy with the lowest
    priority number whose match fits the called identity or number wins."""

    class Match(models.TextChoices):
        IDENTITY = "identity", "Called identity id"
        NUMBER = "number", "Called phone number"
        DEFAULT = "default", "Any call (default)"

    class CallKinds(models.TextChoices):
        PEER_TO_PEER = "peer_to_peer", "Peer-to-peer calls"
        GROUP = "group", "Group calls and meeting invites"
        ANY = "any", "Any"

    class Do(models.TextChoices):
        ANSWER = "answer", "Answer (into a flow, if one is chosen)"
        REJECT = "reject", "Reject"
        REDIRECT = "redirect", "Redirect"
        SUPERVISORS = "supervisors", "Hand to the supervisors (then the fallback)"

    # What a hand-off does when no supervisor decided within its wait.
    class Fallback(models.TextChoices):
        ANSWER = "answer", "Answer (into the flow, if one is chosen)"
        REJECT = "reject", "Reject"
        REDIRECT = "redirect", "Redirect"

    # graph.limits.REJECT_REASONS, as choices (a test keeps the two equal).
    class RejectReason(models.TextChoices):
        NONE = "none"
        BUSY = "busy"
        FORBIDDEN = "forbidden"

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    priority = models.PositiveIntegerField(
        default=100, help_text="Lower numbers are tried first."
    )
    match = models.CharField(max_length=16, choices=Match.choices)
    match_value = models.CharField(
        max_length=128,
        blank=True,
        help_text="The called application (instance) id, or the number as +E.164.",
    )
    call_kinds = models.CharField(
        max_length=16, choices=CallKinds.choices, default=CallKinds.PEER_TO_PEER
    )
    action = models.CharField(max_length=16, choices=Do.choices)
    flow = models.ForeignKey(
        IvrFlow,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="policies",
    )
    reject_reason = models.CharField(
        max_length=16, choices=RejectReason.choices, default=RejectReason.NONE
    )
    target_user_id = models.CharField(
        max_length=64, blank=True, help_text="Redirect to this Azure AD object id..."
    )
    target_phone = models.CharField(
        max_length=32, blank=True, help_text="...or to this number (+E.164)."
    )
    target_display_name = models.CharField(max_length=255, blank=True)
    max_wait_seconds = models.PositiveSmallIntegerField(
        default=10,
        help_text=(
            "Hand-off only: how long the call rings for the supervisors before the "
            f"fallback; under Teams' {ANSWER_WINDOW_SECONDS} s answer window."
        ),
    )
    fallback = models.CharField(
        max_length=16,
        choices=Fallback.choices,
        blank=True,
        help_text="Hand-off only: what the bot does when nobody decided in time.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        verbose_name_plural = "call policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(match="default") | ~Q(match_value=""),
                name="call_policy_match_value_set",
            ),
            models.CheckConstraint(
                condition=~Q(action="redirect")
                | ~Q(target_user_id="")
                | ~Q(target_phone=""),
                name="call_policy_redirect_has_target",
            ),
            models.CheckConstraint(
                condition=~Q(action="supervisors")
                | (
                    ~Q(fallback="")
                    & Q(max_wait_seconds__gte=1)
                    & Q(max_wait_seconds__lt=ANSWER_WINDOW_SECONDS)
                ),
                name="call_policy_handoff_has_fallback",
            ),
        ]
        indexes = [
            # Choosing the policy for a new call: enabled ones in priority order.
            models.Index(
                fields=["priority", "id"],
                condition=Q(enabled=True),
                name="call_policy_enabled_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Graph ids compare case-insensitively; store them as ingest compares them.
        if self.match == self.Match.IDENTITY:
            self.match_value = self.match_value.strip().lower()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        errors: dict[str, str] = {}
        if self.match != self.Match.DEFAULT and not self.match_value:
            errors["match_value"] = (
                "Say which identity id or number this policy matches."
            )
        e164, guid = E164_PATTERN.fullmatch, GUID_PATTERN.fullmatch
        if self.match == self.Match.NUMBER and not e164(self.match_value):
            errors["match_value"] = (
                "Write the number in +E.164 form, e.g. +14255550199."
            )
        if self.action == self.Do.SUPERVISORS:
            if not self.fallback:
                errors["fallback"] = (
                    "Say what the bot does when no supervisor decides in time."
                )
            if not 1 <= self.max_wait_seconds < ANSWER_WINDOW_SECONDS:
                errors["max_wait_seconds"] = (
                    f"Wait 1 to {ANSWER_WINDOW_SECONDS - 1} s: Teams ends a call "
                    f"nobody answered after {ANSWER_WINDOW_SECONDS} s."
                )
        if self.decision == self.Do.REDIRECT:
            if bool(self.target_user_id) == bool(self.target_phone):
                errors["target_user_id"] = (
                    "A redirect needs exactly one target: a user id or a phone number."
                )
            elif self.target_user_id and not guid(self.target_user_id):
                errors["target_user_id"] = "Write an Azure AD object id (a GUID)."
            if self.target_phone and not e164(self.target_phone):
                errors["target_phone"] = "Write the number in +E.164 form."
        if self.decision != self.Do.ANSWER and self.flow_id is not None:
            errors["flow"] = "Only an answering policy runs a flow."
        if errors:
            raise ValidationError(errors)

    @property
    def decision(self) -> str:
        """What the bot itself does: the action, or a hand-off's fallback."""
        return self.fallback if self.action == self.Do.SUPERVISORS else self.action

    def decision_text(self) -> str:
        """The bot's own decision in words, for the board ("reject (busy)")."""
        if self.decision == self.Do.REJECT:
            return f"reject ({self.reject_reason})"
        if self.decision == self.Do.REDIRECT:
            who = self.target_display_name or self.target_phone or self.target_user_id
            return f"redirect to {who}"
        if self.flow_id is not None and self.flow is not None:
            return f"answer into {self.flow.name}"
        return "answer"

    def target(self) -> dict[str, str]:
        """The redirect target in ``request_action``'s TARGET shape."""
        if self.target_phone:
            return {"phone": self.target_phone}
        target = {"user_id": self.target_user_id}
        if self.target_display_name:
            target["display_name"] = self.target_display_name
        return target


HISTORY_KEPT = 100
PATH_CHARS = 1000
_PRESSED = re.compile(r"pressed (\S+)")


def path_token(step: str, keys: str = "") -> str:
    """One token of ``IvrSession.path``, delimited, as the history's filter
    matches it: ``" sales "`` for a step, ``" menu:1 "`` for an option chosen."""
    return f" {step}:{keys} " if keys else f" {step} "


class IvrSession(models.Model):
    """One call running one flow: where it is, what was pressed, what it waits on."""

    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        ENDED = "ended", "Ended by the caller"

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="ivr")
    flow = models.ForeignKey(
        IvrFlow, null=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    policy = models.ForeignKey(
        CallPolicy, null=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    # The flow as it was when the call started: editing a flow never breaks a call.
    flow_start = models.CharField(max_length=64)
    flow_steps = models.JSONField(default=list)
    current_step = models.CharField(max_length=64, blank=True)
    phase = models.CharField(max_length=16, default="new")
    digits = models.CharField(max_length=32, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    awaiting_action_id = models.BigIntegerField(null=True, blank=True)
    # When a looped prompt (hold music) may start again (``flows.LOOP_SECONDS``).
    replay_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    outcome = models.CharField(max_length=255, blank=True)
    # Every step entered and key sequence routed, for the call's history.
    history = models.JSONField(default=list, blank=True)
    # The way through the flow as space-separated tokens, each step entered and
    # each option chosen as ``step:keys`` (" menu menu:1 sales "): the history
    # filters on one token with a LIKE on this column (``path_token``).
    path = models.CharField(max_length=PATH_CHARS, blank=True, default="")
    # Activity of the call waits in ``HeldActivity`` (its task was refused by
    # the broker): whatever moves the session next handles it first.
    held = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "IVR session"
        indexes = [
            # The timeout sweep: running sessions whose deadline passed (a collect
            # step's timeout, a supervisors step's wait).
            models.Index(
                fields=["deadline"],
                condition=Q(status="running") & Q(deadline__isnull=False),
                name="ivr_session_deadline_idx",
            ),
            # The same sweep: looped prompts over early, due to play again.
            models.Index(
                fields=["replay_at"],
                condition=Q(status="running")
                & Q(replay_at__isnull=False)
                & Q(awaiting_action_id__isnull=True),
                name="ivr_session_replay_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow_start} on call {self.call_id} ({self.status})"

    # What ``store`` writes: a step saves these and nothing else.
    STATE_FIELDS = (
        "current_step",
        "phase",
        "digits",
        "deadline",
        "awaiting_action_id",
        "replay_at",
        "status",
        "outcome",
        "history",
        "path",
        "updated_at",
    )

    def flow_definition(self) -> flows.Flow:
        return flows.parse_flow(self.flow_start, self.flow_steps)

    def state(self) -> flows.FlowState:
        return flows.FlowState(
            step=self.current_step,
            phase=self.phase,  # type: ignore[arg-type]
            digits=self.digits,
            deadline=self.deadline,
            awaiting=self.awaiting_action_id,
            replay_at=self.replay_at,
            status=self.status,  # type: ignore[arg-type]
            outcome=self.outcome,
        )

    def _extend_path(self, state: flows.FlowState) -> None:
        tokens = ""
        pressed = _PRESSED.fullmatch(state.outcome)
        if self.current_step and pressed and pressed.group(1) != "nothing":
            tokens = path_token(self.current_step, pressed.group(1)).rstrip()
        tokens += path_token(state.step)
        path = (self.path.rstrip() or "") + tokens
        # A looping caller: the path keeps its start, and stops growing when full.
        if len(path) <= PATH_CHARS:
            self.path = path

    def store(self, state: flows.FlowState, now: datetime) -> None:
        """Copy ``state`` onto the row (not saved), noting a new step in history."""
        if state.step and state.step != self.current_step:
            entry = {"at": now.isoformat(), "step": state.step, "after": state.outcome}
            # A caller looping through a menu must not grow the row without end.
            self.history = [*self.history, entry][-HISTORY_KEPT:]
            self._extend_path(state)
        self.current_step = state.step
        self.phase = state.phase
        self.digits = state.digits
        self.deadline = state.deadline
        self.awaiting_action_id = state.awaiting
        self.replay_at = state.replay_at
        self.status = state.status
        self.outcome = state.outcome[:255]


class Handoff(models.Model):
    """A ringing call a policy handed to the supervisors: it waits on the board until
    ``wait_until``, when the sweep applies the policy's fallback unless a supervisor
    (or anyone) decided it first."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        DECIDED = "decided", "Decided by a supervisor"
        FELL_BACK = "fell_back", "Fallback applied"
        ENDED = "ended", "Ended before a decision"

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="handoff")
    policy = models.ForeignKey(
        CallPolicy, null=True, on_delete=models.SET_NULL, related_name="handoffs"
    )
    wait_until = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.WAITING
    )
    outcome = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The sweep: waiting hand-offs whose wait is over.
            models.Index(
                fields=["wait_until"],
                condition=Q(status="waiting"),
                name="ivr_handoff_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"hand-off of call {self.call_id} ({self.status})"


class UnsentPolicy(models.Model):
    """A new incoming call whose ``handle_call_activity`` message the broker did
    not take (Redis away): nothing would decide it. ``decide_unsent_calls`` (beat,
    every second) applies the call policy while the call still rings, once the
    broker is back, and deletes the row; ``runtime.apply_policy`` decides a call
    once whoever runs it."""

    call = models.OneToOneField(
        Call, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"unsent policy of call {self.call_id}"


class HeldActivity(models.Model):
    """A call's activity (a ``CallActivity`` as a dict: tones, actions finished,
    the call established or ended) whose ``handle_call_activity`` message the
    broker did not take (Redis away). ``held.handle_held`` handles it once the
    broker is back, in ``id`` order per call, and deletes the row in the
    transaction that moved the flow: ``decide_unsent_calls`` (beat, every
    second), or first whatever moves the call's session next (its next task,
    the timeout sweep), so nothing newer overtakes it."""

    id = models.BigAutoField(primary_key=True)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="+")
    activity = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "held activity"

    def __str__(self) -> str:
        return f"held activity of call {self.call_id}"
