"""Cursor pages: DRF's cursor pagination for lists ordered by id, newest first.

The call list pages by the history's own keyset cursors instead
(``views_calls.CallPagination``): its order is the sort the caller chose.
"""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class NewestFirstCursorPagination(CursorPagination):
    """``?cursor=`` from the ``next``/``previous`` links; ``?page_size=`` 1..200."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200


class AuditCursorPagination(NewestFirstCursorPagination):
    # The trail's own order: its sequence, not the row id.
    ordering = "-sequence"
