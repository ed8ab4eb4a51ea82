"""Serving uploaded prompts to Graph, which fetches them by URL (no login)."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from callbot.ivr.models import Prompt


@require_safe
def prompt_audio(request: HttpRequest, name: str) -> FileResponse:
    """The WAV of an uploaded prompt (shipped prompts are static files)."""
    prompt = get_object_or_404(Prompt, name=name)
    if not prompt.audio:
        raise Http404("This prompt is a static file.")
    return FileResponse(prompt.audio.open("rb"), content_type="audio/wav")
