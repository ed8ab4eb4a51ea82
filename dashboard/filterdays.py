"""The day field of the date filters (history, audit trail, their exports and the
API): a day whose range, in any time zone, the calendar can hold.

A filter on days ``since``..``until`` reaches for the midnight after ``until`` and
turns local midnights into UTC, so the calendar's first and last day cannot be
filtered on: they are refused as bad input, as an unreadable date is."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms

FIRST_DAY = date(1, 1, 2)
LAST_DAY = date(9999, 12, 30)
OUT_OF_RANGE = f"Enter a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}."


class DayField(forms.DateField):
    """A ``DateField`` that refuses a day a filter cannot run on."""

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value is not None and not FIRST_DAY <= value <= LAST_DAY:
            raise forms.ValidationError(OUT_OF_RANGE, code="out_of_range")
