"""What Graph allows on a given call, kind by kind, and why not when it does not.

Graph refuses some requests by the shape of the call rather than its state: the
bot mutes itself, mutes or removes others only in group calls and meetings
(contract §6.8, §6.16); it changes its screen-sharing role only in a group call
whose media the app hosts (§6.14); prompts, recordings and tones need media that
Teams hosts (§6.9, §6.10, §6.12); nobody may unmute someone else (§6.16). Each
rule is a column of the kinds table (``group_only``, ``media``, ``unsupported``);
this module turns them into one sentence per refusal.

The same sentence serves the page (a control shown disabled with it) and the
service (a request refused with it, code ``not_offered``), so the two never
disagree. Pure: reads the call's ``kind`` and ``media_config_kind`` only, no
queries. Must not import services or ingest.
"""

from __future__ import annotations

from callbot.calls import kinds
from callbot.calls.models import Call
from callbot.calls.states import CallKind

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


def call_media(call: Call) -> str:
    """The media hosting of ``call``: ``app_hosted`` or ``service_hosted``.

    Only a call whose notifications said ``appHostedMediaConfig`` counts as app
    hosted: Callbot itself answers, places and joins with
    ``serviceHostedMediaConfig`` (``callbot.graph.bodies``), and an incoming call's
    notifications often carry no ``mediaConfig`` at all.
    """
    return APP_HOSTED if call.media_config_kind == APP_HOSTED else SERVICE_HOSTED


def availability(call: Call, kind: str) -> str | None:
    """None when Graph allows ``kind`` on ``call``; otherwise one sentence why not.

    Says nothing about the call's state (ringing, ended): that changes by the
    second and ``access.locked_call`` checks it. An unknown kind is not offered.
    """
    row = kinds.spec(kind)
    if row is None:
        return f"Callbot does not know the action {kind!r}."
    if row.unsupported:
        return row.unsupported
    can = row.can or row.label.lower()
    if row.group_only and call.kind == CallKind.PEER_TO_PEER:
        return _GROUP_ONLY.format(can=can)
    if row.media == APP_HOSTED and call_media(call) != APP_HOSTED:
        return _NEEDS_APP_MEDIA.format(can=can)
    if row.media == SERVICE_HOSTED and call_media(call) != SERVICE_HOSTED:
        return _NEEDS_SERVICE_MEDIA.format(can=can)
    return None


def unavailable(call: Call) -> dict[str, str]:
    """Every kind Graph does not allow on ``call``, with its sentence.

    Kinds that create their own call (``states`` None) are left out: they are not
    controls of a call. The browser disables each control whose ``data-kind`` is
    a key here and shows the sentence.
    """
    found: dict[str, str] = {}
    for kind, row in kinds.KINDS.items():
        if row.states is None:
            continue
        reason = availability(call, kind)
        if reason is not None:
            found[kind] = reason
    return found
