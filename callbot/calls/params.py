"""Per-kind parameter cleaning: what a request may carry, checked before it is stored.

Each cleaner takes the raw parameters and the (locked) call, and returns the
parameters to store on the Action with a short target label for people, or raises
``ActionRefusedError`` naming the problem. The contract's limits come from
``callbot.graph.limits``; ``kinds.py`` names each kind's cleaner.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings

from callbot.calls.access import ActionRefusedError, present_participant
from callbot.calls.deciding import still_ringing
from callbot.calls.meetings import meeting_to_join
from callbot.calls.models import Call, RedirectTarget
from callbot.calls.states import CallKind, CallState
from callbot.graph.limits import (
    DTMF_KEYS,
    E164_PATTERN,
    GUID_PATTERN,
    MAX_GROUP_CALL_TARGETS,
    RECORD_TIMER_RANGE,
    RECORDING_STATUSES,
    REJECT_REASONS,
    SCREEN_SHARING_ROLES,
    STOP_TONE_CHARS,
)
from callbot.graph.resources import Identity

Cleaned = tuple[dict[str, Any], str]
Cleaner = Callable[[Mapping[str, Any], Call | None], Cleaned]

# Keys one sendDtmfTones request carries at most (Callbot's limit, not Graph's).
MAX_DTMF_KEYS = 32


def no_params(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    """Kinds that take nothing (or only a participant, cleaned by the service)."""
    return {}, ""


def clean_target(raw: Any) -> dict[str, str]:
    """A call target: ``{"user_id": <object id>}`` or ``{"phone": "+E.164"}``."""
    if not isinstance(raw, Mapping):
        raise ActionRefusedError(
            "invalid", "Give a target: an Azure AD object id or a phone number."
        )
    name = _text(raw.get("display_name"), "display name", 255)
    if raw.get("user_id"):
        user_id = str(raw["user_id"]).strip()
        if not GUID_PATTERN.fullmatch(user_id):
            raise ActionRefusedError(
                "invalid", f"{user_id!r} is not an Azure AD object id (a GUID)."
            )
        return {"user_id": user_id.lower(), "display_name": name}
    if raw.get("phone"):
        phone = re.sub(r"[\s().-]", "", str(raw["phone"]))
        if not E164_PATTERN.fullmatch(phone):
            raise ActionRefusedError(
                "invalid", f"{raw['phone']!r} is not a phone number in +E.164 form."
            )
        return {"phone": phone, "display_name": name}
    raise ActionRefusedError(
        "invalid", "Give a target: an Azure AD object id or a phone number."
    )


def target_label(target: Mapping[str, str]) -> str:
    return (
        target.get("display_name") or target.get("user_id") or target.get("phone", "")
    )


# Graph reaches a phone number only from an application instance (contract §6.2).
PHONE_NEEDS_INSTANCE = (
    "Phone numbers cannot be reached: Teams calls them only from the bot's "
    "application instance, and none is configured (an administrator sets "
    "GRAPH_APPLICATION_INSTANCE_ID)."
)


def phone_refused() -> str:
    """``PHONE_NEEDS_INSTANCE`` when no application instance is configured, else ""."""
    return "" if settings.GRAPH_APPLICATION_INSTANCE_ID else PHONE_NEEDS_INSTANCE


def require_phone_source(target: Mapping[str, str]) -> None:
    """Refuse (``unsupported``) a phone ``target`` while no application instance is
    configured (contract §6.2, §6.16), here rather than by Graph."""
    if target.get("phone") and phone_refused():
        raise ActionRefusedError("unsupported", PHONE_NEEDS_INSTANCE)


def one_target(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    """place_call and redirect: one user or phone number (``require_phone_source``)."""
    target = clean_target(params.get("target"))
    require_phone_source(target)
    return {"target": target}, target_label(target)


place_call = one_target


def peer_target(call: Call) -> dict[str, str] | None:
    """The other party of a peer-to-peer call as a stored target (``clean_target``
    shape): the caller of an incoming call, the callee of one the bot placed.
    None when Callbot does not know them as a user or a phone number."""
    if call.direction == "incoming":
        source = call.source if isinstance(call.source, Mapping) else {}
        who = Identity.from_identity_set(source.get("identity"))
    else:
        first = call.targets[0] if call.targets else None
        if not isinstance(first, Mapping):
            return None
        if first.get("user_id") or first.get("phone"):
            return {k: str(v) for k, v in first.items() if isinstance(v, str)}
        who = Identity.from_identity_set(first.get("identity"))
    if who.kind == "user" and GUID_PATTERN.fullmatch(who.id):
        return {"user_id": who.id.lower(), "display_name": who.display_name}
    if who.kind == "phone" and E164_PATTERN.fullmatch(who.id):
        return {"phone": who.id, "display_name": who.display_name}
    return None


def _other_call(
    raw: Any, call: Call | None, purpose: str
) -> tuple[Call, dict[str, str]]:
    """Another established peer-to-peer call of the bot, and its other party."""
    pk = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and raw.isdecimal() and len(raw) <= 19:
        pk = int(raw)
    if pk is None:
        raise ActionRefusedError("invalid", f"{purpose} names a call by its number.")
    if call is not None and pk == call.pk:
        raise ActionRefusedError("invalid", f"{purpose} must be another call.")
    other = Call.objects.filter(pk=pk).first()
    if other is None:
        raise ActionRefusedError("call_not_found", f"There is no call {pk}.")
    if other.state != CallState.ESTABLISHED:
        raise ActionRefusedError(
            "wrong_state",
            f"Call {pk} is {other.get_state_display().lower()}; {purpose.lower()} "
            "must be an established call.",
        )
    if other.kind != CallKind.PEER_TO_PEER:
        raise ActionRefusedError(
            "wrong_state", f"{purpose} must be a peer-to-peer call; call {pk} is not."
        )
    target = peer_target(other)
    if target is None:
        raise ActionRefusedError(
            "invalid",
            f"Callbot does not know who is on call {pk} as a Teams user or phone "
            "number.",
        )
    return other, target


def transfer(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    """transfer (contract §6.7): blind to ``target``, or consultative with
    ``consult_call``, the bot's other (peer-to-peer) call with the transfer target,
    whose id Graph gets as ``replacesCallId`` and whose party becomes the target.
    Out of a group call or a meeting Graph needs the ``transferee``: the id of the
    participant who is transferred."""
    clean: dict[str, Any] = {}
    if params.get("consult_call") not in (None, ""):
        if params.get("target"):
            raise ActionRefusedError(
                "invalid",
                "A consultative transfer goes to the party of the other call; "
                "give a target or a consult call, not both.",
            )
        other, target = _other_call(params["consult_call"], call, "The consult call")
        clean["replaces_call_id"] = other.graph_id
        clean["consult_call"] = other.pk
        label = f"{target_label(target)} (consultative)"
    else:
        target = clean_target(params.get("target"))
        label = target_label(target)
    require_phone_source(target)
    clean["target"] = target
    group = call is not None and call.kind != CallKind.PEER_TO_PEER
    transferee = params.get("transferee")
    if group and call is not None:
        if not transferee or not isinstance(transferee, str):
            raise ActionRefusedError(
                "invalid",
                "Transferring out of a group call or meeting needs the transferee: "
                "choose who is transferred.",
            )
        person = present_participant(call, transferee)
        if person.identity_kind in ("unknown", "encrypted") or not person.identity_id:
            raise ActionRefusedError(
                "invalid",
                "Teams hides who this participant is, so Callbot cannot name them "
                "as the transferee.",
            )
        clean["transferee"] = {
            "participant_id": person.graph_id,
            "kind": person.identity_kind,
            "id": person.identity_id,
            "display_name": person.display_name,
        }
        label = f"{person.display_name or person.identity_id} to {label}"
    elif transferee:
        raise ActionRefusedError(
            "invalid",
            "A peer-to-peer call transfers its other party; there is no transferee "
            "to choose.",
        )
    return clean, label


def invite(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    """invite: ``target``, or ``replaces_call`` (the bot's other P2P call, whose party
    is moved in; Graph ends that call, contract §7.11), or ``replaces_call_id``."""
    clean: dict[str, Any] = {}
    if params.get("replaces_call") not in (None, ""):
        other, target = _other_call(params["replaces_call"], call, "The call to move")
        clean["replaces_call_id"] = other.graph_id
    else:
        target = clean_target(params.get("target"))
        require_phone_source(target)
        replaces = params.get("replaces_call_id")
        if replaces:
            if not isinstance(replaces, str) or not GUID_PATTERN.fullmatch(replaces):
                raise ActionRefusedError(
                    "invalid", "replaces_call_id must be a call id."
                )
            clean["replaces_call_id"] = replaces
    clean["target"] = target
    return clean, target_label(target)


def group_call(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    raw = params.get("targets")
    if not isinstance(raw, list) or not raw:
        raise ActionRefusedError("invalid", "A group call needs a list of targets.")
    if len(raw) > MAX_GROUP_CALL_TARGETS:
        raise ActionRefusedError(
            "invalid",
            f"A group call starts with at most {MAX_GROUP_CALL_TARGETS} targets; "
            "invite the rest.",
        )
    targets = [clean_target(t) for t in raw]
    for target in targets:
        require_phone_source(target)
    subject = _text(params.get("subject"), "subject", 255)
    return {"targets": targets, "subject": subject}, ", ".join(
        target_label(t) for t in targets
    )


def reject(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    reason = params.get("reason", "none")
    if not _one_of(reason, REJECT_REASONS):
        raise ActionRefusedError("invalid", "Reason must be none, busy or forbidden.")
    still_ringing(call, "reject")
    return {"reason": reason}, str(reason)


def redirect(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    """One target, typed (``target``) or a saved one named by id (``saved_target``)."""
    saved = params.get("saved_target")
    raw: Mapping[str, Any]
    if saved not in (None, ""):
        raw = {"target": saved_target(saved).target()}
    else:
        raw = params
    cleaned = one_target(raw, call)
    still_ringing(call, "redirect")
    return cleaned


def saved_target(value: Any) -> RedirectTarget:
    """The enabled saved redirect target with this id, or a refusal."""
    if isinstance(value, str) and value.isdecimal():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ActionRefusedError("invalid", "A saved target is named by its number.")
    found = RedirectTarget.objects.filter(pk=value, enabled=True).first()
    if found is None:
        raise ActionRefusedError(
            "invalid", f"There is no saved redirect target {value}; reload the page."
        )
    return found


def join_meeting(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    meeting = meeting_to_join(params)
    return {"meeting_id": meeting.pk}, meeting.subject or f"meeting {meeting.pk}"


def online_meeting(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    subject = _text(params.get("subject"), "subject", 255)
    clean: dict[str, Any] = {"subject": subject}
    for name in ("starts_at", "ends_at"):
        if params.get(name):
            clean[name] = _iso(params[name], name)
    return clean, subject


def play_prompt(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    uri = _uri(params.get("uri"), "prompt uri")
    name = _text(params.get("name"), "name", 100)
    return {"uri": uri, "name": name}, name or uri.rsplit("/", 1)[-1]


def record_response(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    clean: dict[str, Any] = {}
    low, high = RECORD_TIMER_RANGE
    for name, default in (
        ("max_record_duration", 10),
        ("initial_silence_timeout", 5),
        ("max_silence_timeout", 2),
    ):
        value = params.get(name, default)
        if not isinstance(value, int) or not low <= value <= high:
            raise ActionRefusedError(
                "invalid", f"{name} must be {low} to {high} seconds."
            )
        clean[name] = value
    stop = params.get("stop_tones", ["#"])
    if not isinstance(stop, list) or not all(
        isinstance(t, str) and len(t) == 1 and t in STOP_TONE_CHARS for t in stop
    ):
        raise ActionRefusedError("invalid", "stop_tones are single keys like '#'.")
    clean["stop_tones"] = stop
    clean["play_beep"] = bool(params.get("play_beep", True))
    if params.get("prompt_uri"):
        clean["prompt_uri"] = _uri(params["prompt_uri"], "prompt uri")
    return clean, "recording"


def dtmf(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    tones = params.get("tones")
    if (
        not isinstance(tones, str)
        or not 1 <= len(tones) <= MAX_DTMF_KEYS
        or not set(tones) <= DTMF_KEYS
    ):
        raise ActionRefusedError(
            "invalid", f"Tones are 1 to {MAX_DTMF_KEYS} of 0-9, *, # and A-D."
        )
    return {"tones": tones}, tones


def screen_sharing_role(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    role = params.get("role")
    if not _one_of(role, SCREEN_SHARING_ROLES):
        raise ActionRefusedError("invalid", "Role must be viewer or sharer.")
    return {"role": role}, str(role)


def recording_status(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    status = params.get("status")
    if not _one_of(status, RECORDING_STATUSES):
        raise ActionRefusedError(
            "invalid", "Recording status must be recording or notRecording."
        )
    return {"status": status}, str(status)


def answer(params: Mapping[str, Any], call: Call | None) -> Cleaned:
    clean: dict[str, Any] = {}
    if params.get("prompt_uris"):
        uris = params["prompt_uris"]
        if not isinstance(uris, list):
            raise ActionRefusedError("invalid", "prompt_uris must be a list.")
        clean["prompt_uris"] = [_uri(u, "prompt uri") for u in uris]
    still_ringing(call, "answer")
    return clean, call.source_display if call is not None else ""


def _one_of(value: Any, allowed: Collection[str]) -> bool:
    # A list or an object would not even hash: only text can be one of them.
    return isinstance(value, str) and value in allowed


def _text(value: Any, what: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ActionRefusedError("invalid", f"{what} must be text of at most {limit}.")
    return value.strip()


def _uri(value: Any, what: str) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://\S+$", value):
        raise ActionRefusedError("invalid", f"The {what} must be an http(s) URL.")
    return value


def _iso(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    try:
        return datetime.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ActionRefusedError(
            "invalid", f"{what} must be a date and time."
        ) from None
