"""``manage.py demo_users``: an admin, a supervisor and an auditor to try the dashboard.

Only on the embedded default (SQLite, emulator): known passwords have no place in
a real deployment, so elsewhere it creates nothing and says so (exit status 0, as
``make run`` calls it in every mode). Idempotent: running it again restores the
same logins.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.permissions import Role
from dashboard.roles import RoleMissingError, upsert_user

DEMO_USERS = [
    ("admin", Role.ADMIN, "callbot-admin"),
    ("supervisor", Role.SUPERVISOR, "callbot-supervisor"),
    ("auditor", Role.AUDITOR, "callbot-auditor"),
]


def is_embedded_default() -> bool:
    return not settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and bool(
        settings.USE_EMULATOR
    )


class Command(BaseCommand):
    help = "Create the demo admin, supervisor and auditor (embedded default only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="print nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if not is_embedded_default():
            # Not an error: `make run` calls this in every mode and must go on.
            self.stderr.write(
                "No demo users: they exist only on the embedded default (no "
                "DATABASE_URL, no GRAPH_TENANT_ID). Create users with "
                "`manage.py create_user NAME --role admin|supervisor|auditor`."
            )
            return
        try:
            for username, role, password in DEMO_USERS:
                upsert_user(username, role, password=password)
        except RoleMissingError as exc:
            raise CommandError(str(exc)) from None
        if options["quiet"]:
            return
        self.stdout.write("Dashboard logins (demo users on the embedded default):")
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {role.value:<10} {username:<11} password {password}")
