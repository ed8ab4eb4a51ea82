"""What Graph allows on a call, kind by kind: the page and the service agree."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from callbot.calls.access import ActionRefusedError
from callbot.calls.availability import availability, unavailable
from callbot.calls.kinds import BROWSER_KINDS, KINDS
from callbot.calls.models import Call
from callbot.calls.services import request, request_action
from tests.factories import CallFactory, ParticipantFactory

P2P, GROUP, MEETING = "peer_to_peer", "group", "meeting"
SERVICE, APP, UNKNOWN = "service_hosted", "app_hosted", ""

GROUP_ONLY = (
    "Teams lets a bot {} only in group calls and meetings; this is a peer-to-peer call."
)
NEEDS_APP = (
    "Teams lets a bot {} only when the app hosts the call's media; "
    "Teams hosts this call's media."
)
NEEDS_SERVICE = (
    "Teams lets a bot {} only when Teams hosts the call's media; "
    "the app hosts this call's media itself."
)
NO_UNMUTE = (
    "Teams does not let a bot unmute someone else; ask them to unmute themselves."
)


def expected(kind: str, call_kind: str, media: str) -> str | None:
    """The contract's rules, written out once more by hand (§6.8-§6.16)."""
    group_only = {
        "mute_bot": "mute itself",
        "unmute_bot": "unmute itself",
        "mute_participant": "mute someone",
        "remove_participant": "remove someone",
        "mute_all": "mute people",
        "change_screen_sharing_role": "change its screen-sharing role",
    }
    service_only = {
        "play_prompt": "play prompts",
        "record_response": "record responses",
        "subscribe_to_tone": "collect key presses",
    }
    if kind == "unmute_participant":
        return NO_UNMUTE
    if kind in group_only and call_kind == P2P:
        return GROUP_ONLY.format(group_only[kind])
    if kind == "change_screen_sharing_role" and media != APP:
        return NEEDS_APP.format(group_only[kind])
    if kind in service_only and media == APP:
        return NEEDS_SERVICE.format(service_only[kind])
    return None


CALL_KINDS = (P2P, GROUP, MEETING)
MEDIA = (SERVICE, APP, UNKNOWN)
IN_CALL_KINDS = sorted(k for k, row in KINDS.items() if row.states is not None)


@pytest.mark.parametrize("media", MEDIA)
@pytest.mark.parametrize("call_kind", CALL_KINDS)
@pytest.mark.parametrize("kind", IN_CALL_KINDS)
def test_availability_follows_the_contract(
    kind: str, call_kind: str, media: str
) -> None:
    call = Call(kind=call_kind, media_config_kind=media)

    assert availability(call, kind) == expected(kind, call_kind, media)


def test_the_bots_self_mute_is_offered_in_group_calls_only() -> None:
    assert availability(Call(kind=P2P), "mute_bot") == GROUP_ONLY.format("mute itself")
    assert availability(Call(kind=GROUP), "mute_bot") is None
    assert availability(Call(kind=MEETING), "unmute_bot") is None


def test_screen_sharing_needs_a_group_call_with_app_hosted_media() -> None:
    role = "change_screen_sharing_role"
    assert availability(Call(kind=MEETING, media_config_kind=APP), role) is None
    assert "app hosts" in (availability(Call(kind=MEETING), role) or "")
    assert "peer-to-peer" in (
        availability(Call(kind=P2P, media_config_kind=APP), role) or ""
    )


def test_an_unknown_kind_is_not_offered() -> None:
    assert availability(Call(kind=GROUP), "teleport") == (
        "Callbot does not know the action 'teleport'."
    )


def test_unavailable_lists_every_refused_control_of_a_call_with_its_reason() -> None:
    p2p = unavailable(Call(kind=P2P, media_config_kind=SERVICE))
    meeting = unavailable(Call(kind=MEETING, media_config_kind=APP))

    assert set(p2p) == {
        "mute_bot",
        "unmute_bot",
        "mute_participant",
        "remove_participant",
        "mute_all",
        "change_screen_sharing_role",
        "unmute_participant",
    }
    assert set(meeting) == {
        "play_prompt",
        "record_response",
        "subscribe_to_tone",
        "unmute_participant",
    }
    assert all(reason.endswith(".") and "\n" not in reason for reason in p2p.values())
    # Kinds that make their own call are no call's controls.
    assert not {"place_call", "join_meeting"} & set(p2p)


REFUSALS = [
    (kind, call_kind, media)
    for kind in sorted(BROWSER_KINDS | {"record_response", "subscribe_to_tone"})
    for call_kind in CALL_KINDS
    for media in (SERVICE, APP)
    if expected(kind, call_kind, media) is not None and kind != "unmute_participant"
]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "call_kind", "media"), REFUSALS)
def test_the_service_refuses_with_the_sentence_the_page_shows(
    bob: Any, kind: str, call_kind: str, media: str
) -> None:
    call = CallFactory(kind=call_kind, media_config_kind=media)
    ana = ParticipantFactory(call=call)

    with pytest.raises(ActionRefusedError) as refused:
        request(
            kind,
            actor=bob,
            call=call,
            participant_id=ana.graph_id if KINDS[kind].participant else "",
            params={"role": "sharer", "uri": "https://example.com/a.wav"},
        )

    assert refused.value.code == "not_offered"
    assert refused.value.message == availability(call, kind)
    assert refused.value.message == unavailable(call)[kind]


@pytest.mark.django_db
def test_unmuting_someone_else_is_refused_with_the_same_sentence(bob: Any) -> None:
    call = CallFactory(kind=MEETING)
    ana = ParticipantFactory(call=call, is_muted=True)

    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            "unmute_participant", actor=bob, call=call, participant_id=ana.graph_id
        )

    assert (refused.value.code, refused.value.message) == ("unsupported", NO_UNMUTE)
    assert unavailable(call)["unmute_participant"] == NO_UNMUTE


@pytest.mark.django_db
def test_an_offered_control_is_queued(bob: Any) -> None:
    call = CallFactory(kind=MEETING, media_config_kind=APP)

    with mock.patch("callbot.calls.enqueue.send_on_commit"):
        action = request_action(
            "change_screen_sharing_role",
            actor=bob,
            call=call,
            params={"role": "sharer"},
        )

    assert (action.kind, action.status) == ("change_screen_sharing_role", "queued")
