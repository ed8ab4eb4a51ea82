"""Admin for the bot's behaviour: prompts, call policies, IVR flows (edited as JSON
and checked on save) and the read-only sessions of calls that ran a flow."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest

from callbot.ivr.models import CallPolicy, IvrFlow, IvrSession, Prompt


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "description", "duration_seconds", "size_bytes", "source"]
    search_fields = ["name", "description"]
    readonly_fields = ["duration_seconds", "size_bytes", "created_at", "updated_at"]

    @admin.display(description="Source")
    def source(self, obj: Prompt) -> str:
        return obj.static_path or obj.audio.name


class IndentedJSONField(forms.JSONField):
    """A JSON field shown indented, so a flow reads as a list of steps."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class IvrFlowForm(forms.ModelForm):  # type: ignore[type-arg]
    steps = IndentedJSONField(
        widget=forms.Textarea(
            attrs={"rows": 30, "cols": 100, "class": "vLargeTextField"}
        ),
        help_text=(
            'Steps, e.g. {"id": "menu", "type": "collect", "prompt": "menu", '
            '"timeout": 5, "max_digits": 1, "terminator": "#", "branches": '
            '{"0": "operator"}, "default": "invalid", "on_timeout": "goodbye"}. '
            "Types: play (prompt, next), collect, record (prompt, next, "
            'max_record_duration...), transfer / invite (target: "operator", '
            '{"user_id": ...} or {"phone": ...}; on_failure), supervisors (max_wait: '
            "5 to 3600 seconds the caller waits, with hold music, on the "
            "supervisors' board for someone to take the call; next: where the "
            "flow goes on when nobody does; prompt: other music, optional), "
            "redirect (start step only), hang_up."
        ),
    )

    class Meta:
        model = IvrFlow
        fields = ["name", "description", "start", "steps"]


@admin.register(IvrFlow)
class IvrFlowAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = IvrFlowForm
    list_display = ["name", "start", "step_count", "updated_at"]
    search_fields = ["name"]

    @admin.display(description="Steps")
    def step_count(self, obj: IvrFlow) -> int:
        return len(obj.steps) if isinstance(obj.steps, list) else 0


class CallPolicyForm(forms.ModelForm):  # type: ignore[type-arg]
    """The policy form: a model error on a field the form does not show (none
    today) is shown above the form, naming the field, instead of failing the page."""

    class Meta:
        model = CallPolicy
        fields = [
            "name",
            "enabled",
            "priority",
            "match",
            "match_value",
            "call_kinds",
            "action",
            "flow",
            "reject_reason",
            "target_user_id",
            "target_phone",
            "target_display_name",
            "max_wait_seconds",
            "fallback",
        ]

    def add_error(self, field: str | None, error: Any) -> None:
        if field is None and isinstance(error, dict | forms.ValidationError):
            by_field = (
                error if isinstance(error, dict) else getattr(error, "error_dict", None)
            )
            if by_field is not None:
                for name, errors in by_field.items():
                    self.add_error(None if name == NON_FIELD_ERRORS else name, errors)
                return
        if field is not None and field not in self.fields:
            label = field.replace("_", " ").capitalize()
            messages = forms.ValidationError(error).messages
            error = [f"{label}: {message}" for message in messages]
            field = None
        super().add_error(field, error)


@admin.register(CallPolicy)
class CallPolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = CallPolicyForm
    list_display = [
        "name",
        "enabled",
        "priority",
        "match",
        "match_value",
        "call_kinds",
        "action",
        "flow",
    ]
    list_editable = ["enabled", "priority"]
    list_filter = ["enabled", "action", "match"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "priority"]}),
        ("Which calls", {"fields": ["match", "match_value", "call_kinds"]}),
        (
            "What to do",
            {
                "fields": [
                    "action",
                    "flow",
                    "reject_reason",
                    "target_user_id",
                    "target_phone",
                    "target_display_name",
                ],
                "description": (
                    "Answer runs the chosen flow (or none); reject and redirect need "
                    "no flow. A hand-off to the supervisors rings the call on their "
                    "board for the max wait, then the fallback decides: answer (into "
                    "the flow), reject (with the reason) or redirect (to the target)."
                ),
            },
        ),
        (
            "Hand-off to the supervisors",
            {"fields": ["max_wait_seconds", "fallback"]},
        ),
    ]


@admin.register(IvrSession)
class IvrSessionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["call", "flow", "status", "current_step", "outcome", "created_at"]
    list_filter = ["status", "flow"]
    list_select_related = ["call", "flow"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
