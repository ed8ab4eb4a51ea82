"""The auditor's pages: the whole audit trail, filtered, and its exports.

Reading only: nothing here changes state except the audit entry an export
leaves behind ("exports made" are audited). Admins and auditors only
(``permissions.can_audit``); every view checks it.

Exports stream in constant memory: served by Daphne (ASGI) they are an async
iterator pulling one chunk at a time from the database thread; under WSGI (the
test client) a plain iterator.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django import forms
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from asgiref.sync import sync_to_async

from callbot.calls import audit, auditexport
from callbot.calls.models import AuditCheckpoint, AuditEntry
from dashboard import auditwords
from dashboard.filterdays import DayField
from dashboard.permissions import can_act, can_audit, can_manage, role_of
from dashboard.views import allowed

PAGE_SIZE = 50
EXPORTS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl"),
}


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    by = forms.ChoiceField(
        required=False,
        choices=[("", "anyone"), ("people", "people"), ("bot", "the bot")],
        label="By",
    )
    action = forms.ChoiceField(required=False)
    outcome = forms.ChoiceField(required=False)
    # An id beyond a database integer would fail the query, not find nothing.
    call = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, label="Call id"
    )
    since = DayField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )
    until = DayField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("action", "outcome"):
            values = (
                AuditEntry.objects.order_by(name)
                .values_list(name, flat=True)
                .distinct()
            )
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)  # noqa: S101 (for mypy)
            field.choices = [("", "any"), *((v, v) for v in values)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("“From” is after “To”.")
        return data

    def audit_filter(self) -> auditexport.AuditFilter:
        data = self.cleaned_data
        return auditexport.AuditFilter(
            actor=data.get("actor") or "",
            by=data.get("by") or "",
            action=data.get("action") or "",
            outcome=data.get("outcome") or "",
            call_id=data.get("call"),
            since=data.get("since"),
            until=data.get("until"),
        )


@require_GET
@allowed(can_audit)
def audit_trail(request: HttpRequest) -> HttpResponse:
    """The trail, newest first, filtered by actor, action, call, outcome, dates."""
    form = AuditFilterForm(request.GET or None)
    # Bad filter input is refused as the history refuses it: 400, each problem said.
    refused = form.is_bound and not form.is_valid()
    chosen = form.audit_filter() if form.is_bound and not refused else None
    rows = (chosen or auditexport.AuditFilter()).entries().order_by("-sequence")
    if refused:
        rows = rows.none()
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.detail_text = json.dumps(entry.detail, sort_keys=True, ensure_ascii=False)
        entry.detail_words = auditwords.in_words(entry.detail)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/audit.html",
        {
            "refused": refused,
            "nav": "audit",
            "role": role_of(request.user),
            "can_act": can_act(request.user),
            "can_manage": can_manage(request.user),
            "can_audit": True,
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "checkpoint": AuditCheckpoint.objects.order_by("-sequence", "-id").first(),
        },
        status=400 if refused else 200,
    )


@require_GET
@allowed(can_audit)
def audit_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The (filtered) trail as CSV or JSON Lines, streamed; the export is audited."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            f"Bad filter: {form.errors.as_text()}",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    chosen = form.audit_filter() if form.is_bound else auditexport.AuditFilter()
    with transaction.atomic():
        audit.record(
            request.user,
            "export.audit",
            fmt,
            outcome="exported",
            detail={"filters": _described(form)},
            client_ip=request.META.get("REMOTE_ADDR"),
        )
    queryset = chosen.entries() if chosen.active else None
    blocks: Iterator[str] = (
        auditexport.csv_lines(queryset)
        if fmt == "csv"
        else auditexport.jsonl_lines(queryset, filtered=chosen.active)
    )
    content_type, extension = EXPORTS[fmt]
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        _async_blocks(blocks) if isinstance(request, ASGIRequest) else blocks,
        content_type=content_type,
    )
    response["Content-Disposition"] = (
        f'attachment; filename="callbot-audit-{stamp}.{extension}"'
    )
    response["Cache-Control"] = "no-store"
    return response


def _described(form: AuditFilterForm) -> dict[str, str]:
    if not form.is_bound:
        return {}
    return {
        name: str(value)
        for name, value in form.cleaned_data.items()
        if value not in (None, "")
    }


async def _async_blocks(blocks: Iterator[str]) -> AsyncIterator[str]:
    """Pull each block in the database thread, one chunk at a time."""

    def pull() -> str | None:
        return next(blocks, None)

    while (block := await sync_to_async(pull, thread_sensitive=True)()) is not None:
        yield block
