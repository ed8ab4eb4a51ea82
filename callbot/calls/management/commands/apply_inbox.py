"""``manage.py apply_inbox``: apply the webhook's stored batches
(``WEBHOOK_APPLY = "deferred"``, docs/ingest.md).

Without arguments it drains the inbox once and says what it did (nothing while
another applier holds the lock: that one drains them). ``--follow`` is the
applier process a web process starts (``inboxapplier``): it drains whenever a
byte arrives on its stdin, and every ``WEBHOOK_INBOX_SWEEP_SECONDS``, until
stdin closes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from callbot.calls import inbox, inboxapplier, inboxrouter


class Command(BaseCommand):
    help = "Apply the webhook's stored batches (once, or --follow a web process)."
    # The applier starts with its web process; it checks nothing a server does not.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--follow",
            action="store_true",
            help="drain on each byte read from stdin until it closes (the applier "
            "process of a web process)",
        )

    def handle(self, *args: Any, follow: bool, **options: Any) -> None:
        name = os.environ.get(inboxapplier.DATABASE_NAME_ENV)
        if name:
            # The database the web process stores into (a test run's is not the
            # one the settings name); no connection is open yet.
            connections["default"].close()
            connections["default"].settings_dict["NAME"] = name
        inbox_name = os.environ.get(inboxapplier.INBOX_NAME_ENV)
        if inbox_name and inboxrouter.separate():
            connections[inboxrouter.ALIAS].close()
            connections[inboxrouter.ALIAS].settings_dict["NAME"] = inbox_name
        if follow:
            if settings.WEBHOOK_INBOX_APPLIER_NICE:
                # Behind its web process's answers for a core (settings.py).
                os.nice(settings.WEBHOOK_INBOX_APPLIER_NICE)
            inboxapplier.follow(sys.stdin.buffer)
            return
        drained = inbox.drain()
        if not drained.held:
            self.stdout.write("another applier is draining the inbox")
            return
        self.stdout.write(
            f"applied {drained.applied} stored batches, set aside {drained.set_aside}; "
            f"{inbox.pending()} waiting"
        )
