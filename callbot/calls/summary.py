"""A call's summary for the history: who called (their id), whom the bot called or
passed the call to, how it came out and for how long, as indexed columns kept in
step by ``save``.

Only the columns and their upkeep; the history's queries live in the dashboard.
Imports ``states`` and the Graph identity shape only (``models`` builds ``Call``
on this).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from callbot.calls.states import (
    SUMMARY_FIELDS,
    SUMMARY_SOURCES,
    CallDirection,
    CallOutcome,
    CallState,
    call_summary,
)
from callbot.graph.resources import Identity

# Actions by which Callbot itself declined a ringing call: such a call is not
# abandoned (``states.call_outcome``).
PASSED_ON_KINDS = ("reject", "redirect")
# The party columns' widths.
PARTY_DISPLAY_MAX = 255
PARTY_IDS_MAX = 1024


def target_party(target: Any) -> tuple[str, str]:
    """(name, id) of a call target: a place or transfer action's target
    (``{"user_id"|"phone": ..., "display_name": ...}``, ``params.clean_target``)
    or a Graph invitation target (``{"identity": <identitySet>}``). The name is
    the id when there is no name; ("", "") for what is neither."""
    if not isinstance(target, Mapping):
        return "", ""
    if isinstance(target.get("identity"), Mapping):
        who = Identity.from_identity_set(target["identity"])
        return who.display_name or who.id, who.id
    ident = str(target.get("user_id") or target.get("phone") or "")
    return str(target.get("display_name") or ident), ident


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
    direction: str
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
    # Whom the bot called (the targets of a call it placed) and passed the call
    # to (transfer and redirect targets), for the history's row and search: their
    # names, and their ids and numbers each between spaces (`` id1 +1425... ``,
    # so a whole one is ``LIKE '% id %'``).
    party_display = models.CharField(max_length=PARTY_DISPLAY_MAX, blank=True)
    party_ids = models.CharField(max_length=PARTY_IDS_MAX, blank=True)

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

    def add_party(self, targets: Iterable[Any]) -> bool:
        """Add ``targets`` (``target_party``'s shapes) to the party columns (not
        saved); whether they changed. A name or id already there is not repeated;
        what would not fit the columns is left out."""
        names = [n for n in self.party_display.split(", ") if n]
        ids = self.party_ids.split()
        for target in targets:
            name, ident = target_party(target)
            if ident and ident not in ids:
                ids.append(ident)
                if name and name not in names:
                    names.append(name)
        display = ", ".join(names)
        while len(display) > PARTY_DISPLAY_MAX and names:
            names.pop()
            display = ", ".join(names)
        kept = f" {' '.join(ids)} " if ids else ""
        while len(kept) > PARTY_IDS_MAX and ids:
            ids.pop()
            kept = f" {' '.join(ids)} " if ids else ""
        changed = (display, kept) != (self.party_display, self.party_ids)
        self.party_display, self.party_ids = display, kept
        return changed

    def refresh_summary(self) -> None:
        """Derive ``outcome`` and ``duration_seconds`` (not saved). ``bulk_create``
        skips ``save``: rows made that way call this first."""

        def summary(passed_on: bool = False) -> tuple[CallOutcome, int]:
            return call_summary(
                self.state or CallState.INCOMING,
                self.established_at,
                self.terminated_at,
                self.result_code,
                self.result_subcode,
                incoming=self.direction == CallDirection.INCOMING,
                passed_on=passed_on,
            )

        self.outcome, self.duration_seconds = summary()
        if self.outcome == CallOutcome.ABANDONED and self.pk is not None:
            # Only an unanswered incoming call that ended asks (one probe of
            # the actions' call index): did Callbot reject or redirect it?
            passed_on = self.actions.filter(  # type: ignore[attr-defined]
                kind__in=PASSED_ON_KINDS, status__in=("sent", "completed")
            ).exists()
            if passed_on:
                self.outcome, _ = summary(passed_on=True)
