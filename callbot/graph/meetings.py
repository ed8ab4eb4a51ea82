"""Teams meeting join links and the meeting coordinates they carry (contract §9).

A ``joinWebUrl`` such as
``https://teams.microsoft.com/l/meetup-join/19%3ameeting_…%40thread.v2/0?context=%7b%22Tid%22…%7d``
holds everything needed to join the meeting by ``chatInfo`` + ``organizerMeetingInfo``:
the chat thread, the message id, and in the JSON ``context`` the organizer's tenant
(``Tid``), object id (``Oid``) and, for channel meetings, the reply-chain ``MessageId``.

``parse_join_web_url`` follows the Microsoft samples' ``JoinInfo.ParseJoinURL``:
decode the whole URL with ``unquote_plus`` (the exact equivalent of .NET's
``WebUtility.UrlDecode``), then *search* for the pattern rather than anchor it.
``build_join_web_url`` is the inverse, encoded the way Teams writes it.

Teams also hands out short links, ``https://teams.microsoft.com/meet/<meeting id>?p=
<passcode>`` (and the same path on ``teams.cloud.microsoft``, ``teams.live.com`` and
the government clouds), which name the meeting by its numeric join id. They carry
no thread or organizer: ``parse_meeting_link`` reads either form, and a short link
is joined with ``joinMeetingIdMeetingInfo`` (contract §2.5, §6.2, §9).

Nothing here imports Django or talks to the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote_plus

from callbot.graph.resources import JsonDict

# The samples' pattern, in Python syntax, with one deliberate tightening: the thread
# must directly follow "meetup-join/". The samples' greedy ".*/" would otherwise read
# a URL that lacks the message id as thread="meetup-join", message=<thread id>, and
# send Graph a nonsense chatInfo. The host is case-insensitive, like any host name.
_JOIN_URL = re.compile(
    r"(?i:https://teams\.microsoft\.com)/.*?meetup-join/"
    r"(?P<thread>[^/?]+)/(?P<message>[^/?]+)\?context=(?P<context>\{.*\})"
)
_MEETUP_JOIN = re.compile(r"(?i:https://teams\.microsoft\.com)/.*?meetup-join/")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# Some mail clients and calendar exports encode the link a second (rarely a third)
# time: "19%253ameeting_…". The samples decode once and would reject those.
_MAX_DECODE_PASSES = 3


# Hosts that serve Teams' short ``/meet/<id>?p=<passcode>`` links.
_SHORT_HOSTS = (
    r"teams\.microsoft\.com|teams\.cloud\.microsoft|teams\.live\.com"
    r"|(?:gov\.|dod\.)?teams\.microsoft\.us"
)
_SHORT_LINK = re.compile(
    rf"(?i:https://(?:{_SHORT_HOSTS}))(?::443)?/meet/(?P<id>[^/?#\s]*)/?"
    r"(?:\?(?P<query>[^#\s]*))?"
)
# A join meeting id as Teams shows it: digits, often grouped by spaces.
_MEETING_ID = re.compile(r"\d{9,20}")
# A passcode as Teams shows it; kept within what Meeting.passcode stores.
_PASSCODE = re.compile(r"[A-Za-z0-9]{1,64}")


class JoinUrlError(ValueError):
    """The text is not a Teams meeting join URL we can take coordinates from."""


@dataclass(frozen=True)
class MeetingIdLink:
    """A meeting named by its numeric join id (and passcode, when it needs one):
    what a short ``/meet/<id>?p=<passcode>`` link or a typed id gives. Joined
    with ``joinMeetingIdMeetingInfo`` (contract §2.5)."""

    join_web_url: str
    join_meeting_id: str
    passcode: str | None


def clean_join_meeting_id(value: str) -> str:
    """The join meeting id Graph wants (digits only) from what a person typed or
    Teams printed ("234 567 890 123"). Raises ``JoinUrlError`` for anything else."""
    digits = re.sub(r"[\s\u00a0-]", "", value or "")
    if not digits:
        raise JoinUrlError("meeting id is empty")
    if not _MEETING_ID.fullmatch(digits):
        raise JoinUrlError(
            "meeting id must be the 9 to 20 digits Teams shows as 'Meeting ID'"
        )
    return digits


def clean_passcode(value: str | None) -> str | None:
    """A meeting passcode (letters and digits), or None when there is none."""
    text = (value or "").strip()
    if not text:
        return None
    if not _PASSCODE.fullmatch(text):
        raise JoinUrlError(
            "passcode must be the letters and digits Teams shows as 'Passcode'"
        )
    return text


def parse_meeting_link(url: str) -> MeetingCoordinates | MeetingIdLink:
    """Any join link Teams hands out: the classic ``meetup-join`` link (see
    ``parse_join_web_url``) or a short ``/meet/<id>?p=<passcode>`` link.

    Raises ``JoinUrlError`` saying what is wrong with the link.
    """
    text = (url or "").strip()
    decoded = text
    for _ in range(_MAX_DECODE_PASSES):
        short = _SHORT_LINK.search(decoded)
        if short is not None:
            return _short_link(short)
        if not _ESCAPE.search(decoded):
            break
        decoded = unquote_plus(decoded)
    try:
        return parse_join_web_url(text)
    except JoinUrlError as exc:
        if _MEETUP_JOIN.search(unquote_plus(text)) or not text:
            raise
        raise JoinUrlError(
            "not a Teams meeting link (expected https://teams.microsoft.com/l/"
            "meetup-join/… or https://teams.microsoft.com/meet/<id>?p=<passcode>)"
        ) from exc


def _short_link(match: re.Match[str]) -> MeetingIdLink:
    raw_id = unquote_plus(match["id"])
    if not raw_id:
        raise JoinUrlError("short meeting link has no meeting id after /meet/")
    try:
        join_id = clean_join_meeting_id(raw_id)
    except JoinUrlError:
        raise JoinUrlError(
            f"short meeting link's id {raw_id[:40]!r} is not a Teams meeting id "
            "(9 to 20 digits)"
        ) from None
    query = parse_qs(match["query"] or "", keep_blank_values=True)
    passcodes = query.get("p", [])
    if len(passcodes) > 1:
        raise JoinUrlError("short meeting link has more than one passcode (?p=)")
    try:
        passcode = clean_passcode(passcodes[0] if passcodes else None)
    except JoinUrlError:
        raise JoinUrlError(
            "short meeting link's passcode (?p=) must be letters and digits"
        ) from None
    return MeetingIdLink(
        join_web_url=match.group(0), join_meeting_id=join_id, passcode=passcode
    )


@dataclass(frozen=True)
class MeetingCoordinates:
    """What a bot needs to join a scheduled Teams meeting (contract §2.5, §10.3).

    ``thread_id`` / ``message_id`` / ``reply_chain_message_id`` form ``chatInfo``;
    ``organizer_id`` and ``tenant_id`` form ``organizerMeetingInfo``. ``tenant_id`` is
    also the ``tenantId`` to send on the call when nothing else is known (§9).
    """

    join_web_url: str
    thread_id: str
    message_id: str
    reply_chain_message_id: str | None
    tenant_id: str
    organizer_id: str

    def chat_info(self) -> JsonDict:
        """The ``chatInfo`` object for ``POST /communications/calls``."""
        info: JsonDict = {
            "@odata.type": "#microsoft.graph.chatInfo",
            "threadId": self.thread_id,
            "messageId": self.message_id,
        }
        if self.reply_chain_message_id is not None:
            info["replyChainMessageId"] = self.reply_chain_message_id
        return info

    def meeting_info(self, *, allow_conversation_without_host: bool = True) -> JsonDict:
        """The ``organizerMeetingInfo`` object for ``POST /communications/calls``.

        Carries the organizer's ``tenantId`` as ``Sample.Common`` does (§9); the
        ``allowConversationWithoutHost`` default matches the documented join example.
        """
        return {
            "@odata.type": "#microsoft.graph.organizerMeetingInfo",
            "organizer": {
                "@odata.type": "#microsoft.graph.identitySet",
                "user": {
                    "@odata.type": "#microsoft.graph.identity",
                    "id": self.organizer_id,
                    "tenantId": self.tenant_id,
                },
            },
            "allowConversationWithoutHost": allow_conversation_without_host,
        }


def parse_join_web_url(url: str) -> MeetingCoordinates:
    """Read the meeting coordinates out of a Teams ``joinWebUrl``.

    Steps:
    1. Decode with ``unquote_plus`` (``+`` becomes a space, as in .NET), and again,
       up to three passes in all, while the link is still percent-encoded.
    2. Search for ``https://teams.microsoft.com/…meetup-join/{thread}/{message}
       ?context={…}``.
    3. Parse ``context`` as a JSON object; ``Tid`` and ``Oid`` are required,
       ``MessageId`` (the channel reply chain) is optional. Keys are case-sensitive.

    Raises ``JoinUrlError`` saying which part is missing or wrong. Short
    ``/meet/<id>`` links and ``teams.live.com`` links carry none of these parts and
    are refused here; ``parse_meeting_link`` reads them as a meeting id.
    """
    if not url or not url.strip():
        raise JoinUrlError("join URL is empty")

    decoded = url.strip()
    match: re.Match[str] | None = None
    for _ in range(_MAX_DECODE_PASSES):
        decoded = unquote_plus(decoded)
        match = _JOIN_URL.search(decoded)
        if match is not None and not _ESCAPE.search(match.group(0)):
            break
        if not _ESCAPE.search(decoded):
            break

    if match is None:
        raise JoinUrlError(_diagnose(decoded))

    context = _parse_context(match["context"])
    tenant_id = _context_str(context, "Tid", "organizer's tenant id")
    organizer_id = _context_str(context, "Oid", "organizer's object id")
    reply_chain = context.get("MessageId")
    if reply_chain is not None and (
        isinstance(reply_chain, bool) or not isinstance(reply_chain, str | int)
    ):
        raise JoinUrlError("join URL context MessageId must be a string")
    reply_chain_message_id = (
        str(reply_chain) if reply_chain is not None and reply_chain != "" else None
    )

    return MeetingCoordinates(
        join_web_url=url.strip(),
        thread_id=match["thread"],
        message_id=match["message"],
        reply_chain_message_id=reply_chain_message_id,
        tenant_id=tenant_id,
        organizer_id=organizer_id,
    )


def build_join_web_url(
    thread_id: str,
    message_id: str,
    tenant_id: str,
    organizer_id: str,
    reply_chain_message_id: str | None = None,
) -> str:
    """The ``joinWebUrl`` Teams would give a meeting with these coordinates.

    Encoded as Teams writes it: every reserved character percent-encoded with
    lower-case hex (``19%3ameeting_…%40thread.v2``), the context compact JSON with
    keys ``Tid``, ``Oid`` and, for channel meetings, ``MessageId``.
    ``parse_join_web_url`` reverses it exactly.
    """
    context: dict[str, str] = {"Tid": tenant_id, "Oid": organizer_id}
    if reply_chain_message_id is not None:
        context["MessageId"] = reply_chain_message_id
    context_json = json.dumps(context, separators=(",", ":"))
    return (
        "https://teams.microsoft.com/l/meetup-join/"
        f"{_teams_quote(thread_id)}/{_teams_quote(message_id)}"
        f"?context={_teams_quote(context_json)}"
    )


def _teams_quote(value: str) -> str:
    # Teams emits lower-case escapes ("%3a", "%7b"); quote() writes upper case.
    return _ESCAPE.sub(lambda m: m.group(0).lower(), quote(value, safe=""))


def _diagnose(decoded: str) -> str:
    """Why a decoded URL does not match, in terms a user pasting a link understands."""
    start = _MEETUP_JOIN.search(decoded)
    if start is None:
        return (
            "not a Teams meetup-join URL (expected "
            "https://teams.microsoft.com/l/meetup-join/<thread>/<message>?context=…)"
        )
    rest = decoded[start.end() :]
    path, has_query, query = rest.partition("?")
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2:
        return "join URL is missing the thread id or the message id after meetup-join/"
    if len(segments) > 2:
        return "join URL has extra path segments after meetup-join/<thread>/<message>"
    if not has_query or "context=" not in query:
        return "join URL has no ?context= with the organizer's Tid and Oid"
    return "join URL context is not a JSON object ({…} after context=)"


def _parse_context(raw: str) -> dict[str, Any]:
    try:
        context = json.loads(raw)
    except ValueError:
        raise JoinUrlError("join URL context is not valid JSON") from None
    if not isinstance(context, dict):
        raise JoinUrlError("join URL context is not a JSON object")
    return context


def _context_str(context: dict[str, Any], key: str, meaning: str) -> str:
    value = context.get(key)
    if not isinstance(value, str) or not value.strip():
        raise JoinUrlError(
            f"join URL context has no {key} ({meaning}); keys are case-sensitive"
        )
    return value.strip()
