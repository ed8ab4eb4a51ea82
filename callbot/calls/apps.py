from __future__ import annotations

from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "callbot.calls"
    label = "calls"
    verbose_name = "Calls"
    default_auto_field = "django.db.models.BigAutoField"
