"""On the embedded default, the webhook inbox in a SQLite file of its own.

SQLite has one writer per file. With the inbox in the main file, the webhook's
``INSERT`` of a batch waited for the applier's transaction (a group of batches
applied: tens of milliseconds) to commit. In a file of its own
(``WEBHOOK_INBOX_DATABASE``, ``callbot-inbox.sqlite3`` beside the main one; the
``inbox`` database alias) the store waits only for another store or the
applier's short ``DELETE`` of applied rows. With PostgreSQL there is no
``inbox`` alias and this router sends nothing anywhere: the inbox stays in the
main database. ``docs/ingest.md`` says how delivery and order still hold.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

ALIAS = "inbox"
_APP = "calls"
_MODEL = "inboxbatch"


def separate() -> bool:
    """Whether the inbox has a database of its own (SQLite, the embedded default)."""
    return ALIAS in settings.DATABASES


def _is_inbox(model: Any) -> bool:
    meta = model._meta
    return bool(meta.app_label == _APP and meta.model_name == _MODEL)


class InboxRouter:
    """``InboxBatch`` on the ``inbox`` alias; nothing else there."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return ALIAS if _is_inbox(model) and separate() else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return ALIAS if _is_inbox(model) and separate() else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if not separate():
            return None
        inbox = app_label == _APP and model_name == _MODEL
        if db == ALIAS:
            return inbox
        return False if inbox else None
