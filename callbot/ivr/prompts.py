"""Prompts: the ones Callbot ships, and the public URL Graph fetches each from.

Shipped prompts are WAV files under ``callbot/ivr/static/ivr/prompts/`` (made by
``make prompts`` from ``SHIPPED_PROMPTS``) served as static files; uploaded prompts
are ``Prompt`` rows with a file under ``MEDIA_ROOT``, served by ``callbot.ivr.views``.
Graph fetches prompts itself, so every URI starts with ``BOT_PUBLIC_URL``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from callbot.ivr import flows

SHIPPED_DIR = Path(__file__).resolve().parent / "static" / "ivr" / "prompts"
SHIPPED_STATIC_PREFIX = "ivr/prompts/"

# name -> what the prompt says (espeak-ng reads these in `make prompts`).
SHIPPED_PROMPTS: dict[str, str] = {
    "welcome": "Hello, and thank you for calling.",
    "menu": (
        "Thank you for calling. Press 1 to leave a message. "
        "Press 2 to hear these options again. Press 0 to speak to a supervisor."
    ),
    "invalid": "Sorry, that is not an option.",
    "no-input": "We did not hear a choice.",
    # The demo flow queues the caller for the supervisors (the operator only
    # after a minute's wait), so the prompt promises a supervisor.
    "connecting": "Please hold while we connect you to a supervisor.",
    "record-after-beep": (
        "Please leave your message after the beep, and press pound when you are done."
    ),
    "goodbye": "Thank you for calling. Goodbye.",
}


# Shipped audio that is not speech: made by ``audio``, not by espeak-ng.
HOLD_MUSIC = flows.HOLD_MUSIC
SHIPPED_MUSIC: dict[str, str] = {
    HOLD_MUSIC: "A quiet chime, looped while a caller waits for a person.",
}


class PromptNotFoundError(LookupError):
    """No prompt has that name."""


def shipped_path(name: str) -> Path | None:
    """The shipped WAV file for ``name``, if Callbot ships one."""
    path = SHIPPED_DIR / f"{name}.wav"
    shipped = name in SHIPPED_PROMPTS or name in SHIPPED_MUSIC
    return path if shipped and path.is_file() else None


def _absolute(path: str) -> str:
    return f"{settings.BOT_PUBLIC_URL.rstrip('/')}/{path.lstrip('/')}"


def static_uri(static_path: str) -> str:
    """The public URL of a file under the static root."""
    return _absolute(f"{settings.STATIC_URL.rstrip('/')}/{static_path}")


def prompt_uri(name: str) -> str:
    """The public URL of the prompt called ``name``, for ``play_prompt``'s ``uri``.

    An admin's ``Prompt`` row wins over a shipped prompt of the same name. Raises
    ``PromptNotFoundError`` when neither exists.
    """
    uri = prompt_uris([name]).get(name)
    if uri is None:
        raise PromptNotFoundError(f"No prompt is named {name!r}.")
    return uri


def prompt_uris(names: Iterable[str]) -> dict[str, str]:
    """The public URL of each prompt in ``names`` that exists, by name, in one
    query: an answer prefetches every prompt of its flow, and one query per
    prompt was most of an answer's statements. Missing names are left out."""
    from callbot.ivr.models import Prompt

    wanted = set(names)
    if not wanted:
        return {}
    rows = Prompt.objects.filter(name__in=wanted).values_list(
        "name", "static_path", "audio"
    )
    uris = {name: _row_uri(name, static, upload) for name, static, upload in rows}
    for name in wanted - uris.keys():
        if shipped_path(name) is not None:
            uris[name] = static_uri(f"{SHIPPED_STATIC_PREFIX}{name}.wav")
    return uris


def _row_uri(name: str, static_path: str, upload: str) -> str:
    """Where Graph fetches an admin's ``Prompt`` row from: its shipped file, or
    its upload (stored under ``upload``) served by ``callbot.ivr.views``."""
    if static_path:
        return static_uri(static_path)
    try:
        return _absolute(reverse("ivr-prompt", kwargs={"name": name}))
    except NoReverseMatch:
        return _absolute(f"{settings.MEDIA_URL.rstrip('/')}/{upload}")


def known_prompt_names() -> set[str]:
    """Every name ``prompt_uri`` resolves: Prompt rows and shipped prompts."""
    from callbot.ivr.models import Prompt

    names = set(Prompt.objects.values_list("name", flat=True))
    names.update(
        name
        for name in (*SHIPPED_PROMPTS, *SHIPPED_MUSIC)
        if shipped_path(name) is not None
    )
    return names
