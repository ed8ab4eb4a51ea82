"""What Graph allows on a given call, kind by kind, and why not when it does not.

A control is not offered for one of four reasons, checked in this order (the
lasting reason first, so a ringing peer-to-peer call's self-mute says "group calls
only" rather than "answer first"):

1. Graph cannot do it at all (``unsupported``: nobody may unmute someone else,
   contract §6.16).
2. The app lacks the application permission Graph requires for it (``needs``):
   the ``roles`` of the app's access token, when known (``app_permissions``).
3. The shape of the call: the bot mutes itself, mutes or removes others only in
   group calls and meetings (§6.8, §6.16); it changes its screen-sharing role only
   in a group call whose media the app hosts (§6.14); prompts, recordings and
   tones need media that Teams hosts (§6.9, §6.10, §6.12).
4. The state of the call: a ringing call can only be answered, rejected or
   redirected; an answered one no longer can (``states``; browser controls only).

Each reason has a short code (``group_only``); ``REASONS`` holds every sentence,
built once, keyed by the code or by ``<code>.<kind>`` where the sentence names
what the kind does (``group_only.mute_bot``). The board and call pages are sent
``REASONS`` once (the socket's ``hello``) and each call's codes (``unavailable``:
``{"mute_bot": "group_only"}``), so a row does not carry sentences. The
service refuses with the same sentence (code ``not_offered``), so page and service
never disagree. Pure: reads the call's ``kind``, ``state`` and
``media_config_kind`` and the roles it is given; no queries. Must not import
services or ingest.
"""

from __future__ import annotations

from collections.abc import Collection

from callbot.calls import kinds
from callbot.calls.models import Call
from callbot.calls.states import CallKind, CallState

APP_HOSTED = "app_hosted"
SERVICE_HOSTED = "service_hosted"

_GROUP_ONLY = (
    "Teams lets a bot {can} only in group calls and meetings; "
    "this is a peer-to-peer call."
)
_NEEDS_APP_MEDIA = (
    "Teams lets a bot {can} only when the app hosts the call's media; "
    "Teams hosts this call's media."
)
_NEEDS_SERVICE_MEDIA = (
    "Teams lets a bot {can} only when Teams hosts the call's media; "
    "the app hosts this call's media itself."
)
_NEEDS_PERMISSION = (
    "Teams lets a bot {can} only with the application permission {permission}, "
    "which the app's access token lacks (an admin grants it in Entra ID)."
)
_RINGING = "Not while the call rings: answer it first (or reject or redirect it)."
_ANSWERED = "Only while an incoming call rings; this call is past ringing."
_ENDED = "The call has ended."
_STATE = "Only while the call is {states}."

_RINGING_ONLY = frozenset({CallState.INCOMING})


def _can(row: kinds.KindSpec) -> str:
    return row.can or row.label.lower()


def _reasons() -> dict[str, str]:
    """Every code's sentence: the fixed ones, then per kind those its row allows."""
    found = {"ringing": _RINGING, "answered": _ANSWERED, "ended": _ENDED}
    for kind, row in kinds.KINDS.items():
        can = _can(row)
        if row.unsupported:
            found[f"unsupported.{kind}"] = row.unsupported
        if row.needs:
            found[f"permission.{kind}"] = _NEEDS_PERMISSION.format(
                can=can, permission=row.needs
            )
        if row.group_only:
            found[f"group_only.{kind}"] = _GROUP_ONLY.format(can=can)
        if row.media == APP_HOSTED:
            found[f"app_media.{kind}"] = _NEEDS_APP_MEDIA.format(can=can)
        if row.media == SERVICE_HOSTED:
            found[f"service_media.{kind}"] = _NEEDS_SERVICE_MEDIA.format(can=can)
        if row.states is not None and row.states != _RINGING_ONLY:
            states = " or ".join(sorted(s.label.lower() for s in row.states))
            found[f"state.{kind}"] = _STATE.format(states=states)
    return found


# Every sentence any control can be refused with, keyed by its reason code, or by
# "<code>.<kind>" where the sentence names what the kind does.
REASONS: dict[str, str] = _reasons()


def sentence(kind: str, code: str) -> str:
    """The sentence for ``kind`` not offered for reason ``code``."""
    return REASONS.get(f"{code}.{kind}") or REASONS[code]


def call_media(call: Call) -> str:
    """The media hosting of ``call``: ``app_hosted`` or ``service_hosted``.

    Only a call whose notifications said ``appHostedMediaConfig`` counts as app
    hosted: Callbot itself answers, places and joins with
    ``serviceHostedMediaConfig`` (``callbot.graph.bodies``), and an incoming call's
    notifications often carry no ``mediaConfig`` at all.
    """
    return APP_HOSTED if call.media_config_kind == APP_HOSTED else SERVICE_HOSTED


def _shape_code(
    call: Call, kind: str, row: kinds.KindSpec, roles: Collection[str] | None
) -> str | None:
    if row.unsupported:
        return "unsupported"
    if row.needs and roles is not None and row.needs not in roles:
        return "permission"
    if row.group_only and call.kind == CallKind.PEER_TO_PEER:
        return "group_only"
    if row.media == APP_HOSTED and call_media(call) != APP_HOSTED:
        return "app_media"
    if row.media == SERVICE_HOSTED and call_media(call) != SERVICE_HOSTED:
        return "service_media"
    return None


def _state_code(call: Call, kind: str, row: kinds.KindSpec) -> str | None:
    if row.states is None or call.state in row.states:
        return None
    if call.state == CallState.TERMINATED:
        return "ended"
    if call.state == CallState.INCOMING:
        return "ringing"
    if row.states == _RINGING_ONLY:
        return "answered"
    return "state"


def availability(
    call: Call, kind: str, roles: Collection[str] | None = None
) -> str | None:
    """None when Graph allows ``kind`` on a call of this kind and media, with the
    app's ``roles`` (None: not known, so not held against it); otherwise one
    sentence why not.

    Says nothing about the call's state: the service checks that under the call's
    row lock (``access.locked_call``), with its own code (``wrong_state``). An
    unknown kind is not offered.
    """
    row = kinds.spec(kind)
    if row is None:
        return f"Callbot does not know the action {kind!r}."
    code = _shape_code(call, kind, row, roles)
    return sentence(kind, code) if code is not None else None


def missing_permission(kind: str, roles: Collection[str] | None) -> str | None:
    """The sentence naming the permission ``kind`` needs and ``roles`` lack; None
    when they hold it, it needs none, or the roles are not known (None). For the
    kinds that create their own call (placing, joining), which no call refuses."""
    row = kinds.spec(kind)
    if row is None or not row.needs or roles is None or row.needs in roles:
        return None
    return sentence(kind, "permission")


def unavailable(call: Call, roles: Collection[str] | None = None) -> dict[str, str]:
    """Every browser control not offered on ``call`` now, with its reason code
    (``sentence(kind, code)`` words it).

    Covers the kinds a browser may ask for that act on a call (those that create
    their own call are no call's controls), by shape, permission and the call's
    state (see the module). The page disables each control whose ``data-kind`` is
    a key here and shows the code's sentence.
    """
    found: dict[str, str] = {}
    for kind, row in kinds.KINDS.items():
        if row.states is None or not row.browser:
            continue
        code = _shape_code(call, kind, row, roles) or _state_code(call, kind, row)
        if code is not None:
            found[str(kind)] = code
    return found


def unavailable_sentences(
    call: Call, roles: Collection[str] | None = None
) -> dict[str, str]:
    """``unavailable`` with each code replaced by its sentence."""
    return {
        kind: sentence(kind, code) for kind, code in unavailable(call, roles).items()
    }
