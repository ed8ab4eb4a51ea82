from __future__ import annotations

from django.apps import AppConfig


class IvrConfig(AppConfig):
    name = "callbot.ivr"
    label = "ivr"
    verbose_name = "Call policy and IVR"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from callbot.calls.signals import call_activity
        from callbot.ivr.receivers import on_call_activity

        call_activity.connect(on_call_activity, dispatch_uid="callbot.ivr.activity")
