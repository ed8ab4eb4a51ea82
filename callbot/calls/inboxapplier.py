"""The webhook inbox's applier process (``WEBHOOK_INBOX_APPLIER = "process"``).

Started by a web process on its first deferred batch (``inbox._start_child``)
with a pipe on its stdin: each byte wakes it to drain the inbox; the pipe
closing (its web process gone) ends it.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    import django
    from django.conf import settings

    # Apply the inbox of the database the web process stores into (under a
    # test run that is not the one the settings name).
    name = os.environ.get("CALLBOT_INBOX_DATABASE_NAME")
    if name:
        settings.DATABASES["default"]["NAME"] = name
    django.setup()
    from callbot.calls import inbox

    inbox.follow(sys.stdin.buffer)


if __name__ == "__main__":
    main()
