from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dashboard import (  # noqa: F401 (connects the receivers)
            auditlog,
            signals,
            signin,
        )
        from dashboard.roles import grant_admin_everything

        # Sent once per app after each migrate, after auth made that app's
        # permissions: the last one (callbot.api) leaves the Admin role complete.
        post_migrate.connect(
            grant_admin_everything, dispatch_uid="dashboard.grant_admin_everything"
        )
