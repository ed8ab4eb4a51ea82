"""A call's summary for the history: who called (their id), how it came out and for
how long, as indexed columns kept in step by ``save``.

Only the columns and their upkeep; the history's queries live in the dashboard.
Imports ``states`` only (``models`` builds ``Call`` on this).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from callbot.calls.states import (
    SUMMARY_FIELDS,
    SUMMARY_SOURCES,
    CallOutcome,
    CallState,
    call_summary,
)

# The history's indexes on calls: newest and longest first, and each single filter
# in start order, so keyset pages and bounded counts are index ranges.
HISTORY_INDEXES = [
    models.Index(fields=[*columns, "id"], name=f"call_history_{name}_idx")
    for name, columns in {
        "start": ["created_at"],
        "duration": ["duration_seconds"],
        **{f: [f, "created_at"] for f in ("kind", "direction", "outcome")},
    }.items()
]


class CallSummary(models.Model):
    """The summary columns of ``Call`` and their upkeep."""

    state: str
    established_at: Any
    terminated_at: Any
    result_code: int | None
    result_subcode: int | None

    # The caller's Azure AD object id or phone number, for the history's search.
    source_id = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(
        max_length=16, choices=CallOutcome.choices, default=CallOutcome.LIVE
    )
    # Seconds from established to terminated; 0 while live or never established.
    duration_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, keeping the summary in step: a save naming any of
        ``SUMMARY_SOURCES`` in ``update_fields`` also writes ``SUMMARY_FIELDS``."""
        self.refresh_summary()
        fields = kwargs.get("update_fields")
        if fields is not None and SUMMARY_SOURCES.intersection(fields):
            kwargs["update_fields"] = {*fields, *SUMMARY_FIELDS}
        super().save(*args, **kwargs)

    def refresh_summary(self) -> None:
        """Derive ``outcome`` and ``duration_seconds`` (not saved). ``bulk_create``
        skips ``save``: rows made that way call this first."""
        self.outcome, self.duration_seconds = call_summary(
            self.state or CallState.INCOMING,
            self.established_at,
            self.terminated_at,
            self.result_code,
            self.result_subcode,
        )
