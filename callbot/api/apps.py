"""The REST API and outbound webhooks (docs/api.md)."""

from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "callbot.api"
    label = "api"
    verbose_name = "API and webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The webhook events follow the domain's own announcements: ingest's
        # ``call_activity`` (calls started and ended), an action's final outcome
        # and a raised alert (``callbot.calls.signals``).
        from callbot.api import events

        events.connect()
