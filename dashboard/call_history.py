"""An ended (or live) call's history: the timeline pages, exports and recordings.

Thin views: check the role, read through ``timeline_reads``, answer. Playing or
downloading a recording and exporting a call are audit entries.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from callbot.calls import audit
from callbot.calls.board import party, party_id
from callbot.calls.models import Call, Participant, Recording
from callbot.calls.states import CallKind
from dashboard import snapshots, timeline_reads
from dashboard.byteranges import ByteRange, RangeNotSatisfiableError, parse_range
from dashboard.permissions import can_listen, can_view
from dashboard.timeline import CursorError
from dashboard.views import allowed, render_page

View = TypeVar("View", bound=Callable[..., HttpResponseBase])

AUDIO_TYPE = "audio/wav"
CSV_COLUMNS = ["at", "source", "id", "text", "status", "actor", "by_bot", "raw"]


def history_context(request: HttpRequest, call: Call) -> dict[str, Any]:
    """What the call page renders server-side: one page of the roster as it was
    (``roster_after``/``roster_before``), an ended call's head counts and one page
    of the timeline (``after``/``before``/``latest`` from the query string)."""
    query = request.GET
    try:
        size = int(query.get("size") or timeline_reads.PAGE_SIZE)
        page = timeline_reads.timeline_page(
            call,
            after=query.get("after", ""),
            before=query.get("before", ""),
            latest=query.get("latest") == "1",
            size=size,
        )
        roster = timeline_reads.roster_page(
            call,
            after=query.get("roster_after", ""),
            before=query.get("roster_before", ""),
        )
    except (CursorError, ValueError) as exc:
        raise BadRequest(str(exc)) from None
    return {
        "roster_page": roster,
        # Live, the header's counts come over the socket; ended, these say it.
        "roster_summary": None if call.is_live else timeline_reads.roster_summary(call),
        "timeline_page": page,
        "can_listen": can_listen(request.user),
        "other_party": other_party(call),
    }


def other_party(call: Call) -> dict[str, str] | None:
    """Who was at the far end of a peer-to-peer call whose roster does not say:
    Graph lists nobody there (at most the bot itself), so the name and id come
    from the call (the caller, or whom the bot called). None for a group call or
    meeting, and when the roster does name someone besides the bot."""
    if call.kind != CallKind.PEER_TO_PEER:
        return None
    if Participant.objects.filter(call=call, is_bot=False).exists():
        return None
    return {"name": party(call), "id": party_id(call)}


@require_GET
@allowed(can_view)
def call_page(request: HttpRequest, call_id: int) -> HttpResponse:
    """One call: the live roster, timeline and (for supervisors) the controls, over
    the socket; and, rendered here, the roster as it was and the whole timeline a
    page at a time."""
    call = _call(request, call_id)
    return render_page(
        request,
        "dashboard/call.html",
        # An ended call belongs to the history: the nav and the crumb say so.
        nav="board" if call.is_live else "history",
        call=call,
        prompt_default=f"{settings.BOT_PUBLIC_URL}/static/ivr/prompts/welcome.wav",
        **history_context(request, call),
    )


def _call(request: HttpRequest, call_id: int) -> Call:
    try:
        return snapshots.access_call(request.user, call_id)
    except snapshots.CallAccessError:
        raise Http404("No such call") from None


# --- export -------------------------------------------------------------------------------


class _Echo:
    """A file whose ``write`` hands back what it was given (csv.writer into a
    streamed response)."""

    def write(self, value: str) -> str:
        return value


# A cell starting with one of these is a formula to a spreadsheet; names and
# texts come from callers and Teams, so such a cell is quoted as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_lines(call: Call) -> Iterator[str]:
    writer = csv.DictWriter(_Echo(), fieldnames=CSV_COLUMNS)
    yield writer.writeheader()
    for entry in timeline_reads.whole_timeline(call):
        row = timeline_reads.flat(entry)
        if row["raw"] != "":
            row["raw"] = json.dumps(row["raw"], separators=(",", ":"))
        yield writer.writerow({k: _cell(row.get(k, "")) for k in CSV_COLUMNS})


def _json_lines(call: Call) -> Iterator[str]:
    for entry in timeline_reads.whole_timeline(call):
        yield json.dumps(entry.as_json(), ensure_ascii=False) + "\n"


EXPORTS = {
    "csv": ("text/csv; charset=utf-8", _csv_lines),
    "jsonl": ("application/jsonl; charset=utf-8", _json_lines),
}


@require_GET
@allowed(can_view)
def export_call(request: HttpRequest, call_id: int, fmt: str) -> StreamingHttpResponse:
    """The call's whole timeline as CSV or JSON Lines, streamed a chunk at a time;
    the export itself is audited."""
    if fmt not in EXPORTS:
        raise Http404("No such export format")
    call = _call(request, call_id)
    content_type, lines = EXPORTS[fmt]
    audit.record(
        request.user,
        "export.call",
        f"call {call.pk}",
        call,
        outcome="ok",
        detail={"format": fmt},
        client_ip=request.META.get("REMOTE_ADDR"),
    )
    response = StreamingHttpResponse(lines(call), content_type=content_type)
    name = f"call-{call.pk}-{call.created_at:%Y%m%d}-timeline.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- recordings ---------------------------------------------------------------------------


class _Slice:
    """``length`` bytes of an open file from its current position, file-like
    enough for ``FileResponse`` (which reads blocks until b"")."""

    def __init__(self, file: IO[bytes], length: int) -> None:
        self.file = file
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        want = self.left if size < 0 else min(size, self.left)
        data = self.file.read(want)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.file.close()


def recording_filename(recording: Recording) -> str:
    """``call-<call id>-<yyyymmdd>-recording-<n>.wav``, n counting from 1 in the call."""
    day = recording.created_at.strftime("%Y%m%d")
    number = timeline_reads.recording_number(recording)
    return f"call-{recording.call_id or 'none'}-{day}-recording-{number}.wav"


@require_GET
@allowed(can_view)
def recording_audio(request: HttpRequest, recording_id: int) -> HttpResponseBase:
    """A recording's audio for those who may hear it, with single byte ranges so
    the page's audio element can seek; ``?download=1`` as an attachment.

    Playing (a request from the first byte) and downloading are audited; the
    ranges an audio element asks for as it seeks are not, one each.
    """
    if not can_listen(request.user):
        raise PermissionDenied("Your role may not hear recordings.")
    recording = get_object_or_404(
        Recording.objects.select_related("call"), pk=recording_id
    )
    # Only through a call the user may see: a recording without its call (one
    # stored before recordings went with their calls) is not served.
    if recording.call_id is None:
        raise Http404("No such recording")
    _call(request, recording.call_id)
    download = request.GET.get("download") == "1"
    try:
        audio = recording.audio.open("rb")
    except FileNotFoundError:
        raise Http404("The recording's audio is missing") from None
    size = recording.audio.size
    try:
        wanted = parse_range(request.headers.get("Range", ""), size)
    except RangeNotSatisfiableError as exc:
        audio.close()
        response = HttpResponse(str(exc), status=416, content_type="text/plain")
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    if download or wanted is None or wanted.start == 0:
        audit.record(
            request.user,
            "recording.download" if download else "recording.play",
            f"recording {recording.pk}",
            recording.call,
            outcome="ok",
            detail={
                "recording_id": recording.pk,
                "range": request.headers.get("Range", ""),
            },
            client_ip=request.META.get("REMOTE_ADDR"),
        )
    return _audio_response(audio, size, wanted, recording_filename(recording), download)


def _audio_response(
    audio: Any, size: int, wanted: ByteRange | None, filename: str, download: bool
) -> FileResponse:
    if wanted is None:
        response = FileResponse(
            _Slice(audio, size), as_attachment=download, filename=filename
        )
        response["Content-Length"] = str(size)
    else:
        audio.seek(wanted.start)
        response = FileResponse(
            _Slice(audio, wanted.length),
            status=206,
            as_attachment=download,
            filename=filename,
        )
        response["Content-Length"] = str(wanted.length)
        response["Content-Range"] = wanted.content_range(size)
    response["Content-Type"] = AUDIO_TYPE
    response["Accept-Ranges"] = "bytes"
    # Personal data: kept by this browser only, never by a shared cache.
    response["Cache-Control"] = "private, max-age=0"
    return response
