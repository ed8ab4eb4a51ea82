"""What Graph allows on a call, kind by kind: the page and the service agree."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from callbot.calls import app_permissions
from callbot.calls.access import ActionRefusedError
from callbot.calls.app_permissions import KNOWN_PERMISSIONS
from callbot.calls.availability import (
    REASONS,
    availability,
    sentence,
    unavailable,
    unavailable_sentences,
)
from callbot.calls.board import call_summaries
from callbot.calls.kinds import BROWSER_KINDS, KINDS
from callbot.calls.models import Call
from callbot.calls.services import request, request_action
from tests.factories import CallFactory, ParticipantFactory

P2P, GROUP, MEETING = "peer_to_peer", "group", "meeting"
USER = "6e2a8b1c-3d4f-4a5b-8c9d-0e1f2a3b4c5d"
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
    up = "established"
    p2p = unavailable_sentences(Call(kind=P2P, media_config_kind=SERVICE, state=up))
    meeting = unavailable_sentences(Call(kind=MEETING, media_config_kind=APP, state=up))
    past_ringing = {"answer", "reject", "redirect"}

    assert set(p2p) == {
        "mute_bot",
        "unmute_bot",
        "mute_participant",
        "remove_participant",
        "mute_all",
        "change_screen_sharing_role",
        "unmute_participant",
        *past_ringing,
    }
    # Only the controls a browser has: recording and tones are the IVR's.
    assert set(meeting) == {"play_prompt", "unmute_participant", *past_ringing}
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
    if kind in BROWSER_KINDS:  # the page has controls only for these
        assert refused.value.message == unavailable_sentences(call)[kind]


@pytest.mark.django_db
def test_unmuting_someone_else_is_refused_with_the_same_sentence(bob: Any) -> None:
    call = CallFactory(kind=MEETING)
    ana = ParticipantFactory(call=call, is_muted=True)

    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            "unmute_participant", actor=bob, call=call, participant_id=ana.graph_id
        )

    assert (refused.value.code, refused.value.message) == ("unsupported", NO_UNMUTE)
    assert unavailable_sentences(call)["unmute_participant"] == NO_UNMUTE


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


# --- the call's state ------------------------------------------------------------------

RINGING_KINDS = {"answer", "reject", "redirect"}


@pytest.mark.parametrize("call_kind", CALL_KINDS)
def test_a_ringing_call_offers_only_answer_reject_and_redirect(call_kind: str) -> None:
    ringing = Call(kind=call_kind, state="incoming", media_config_kind=SERVICE)

    codes = unavailable(ringing)

    offered = {k for k in BROWSER_KINDS if KINDS[k].states is not None} - set(codes)
    assert offered == RINGING_KINDS
    # In-call controls say to answer first, unless a lasting reason comes first.
    assert codes["transfer"] == codes["invite"] == codes["hang_up"] == "ringing"
    assert sentence("invite", "ringing") == (
        "Not while the call rings: answer it first (or reject or redirect it)."
    )


@pytest.mark.parametrize("state", ["established", "hold"])
def test_an_answered_call_offers_no_answer_reject_or_redirect(state: str) -> None:
    call = Call(kind=GROUP, state=state, media_config_kind=SERVICE)

    codes = unavailable(call)

    assert {codes[k] for k in RINGING_KINDS} == {"answered"}
    assert "invite" not in codes
    assert sentence("answer", "answered") == (
        "Only while an incoming call rings; this call is past ringing."
    )


def test_a_control_needing_another_connected_state_says_which() -> None:
    held = Call(kind=GROUP, state="hold", media_config_kind=SERVICE)

    assert unavailable(held)["transfer"] == "state"
    assert sentence("transfer", "state") == "Only while the call is established."


def test_an_ended_call_offers_nothing() -> None:
    ended = Call(kind=GROUP, state="terminated", media_config_kind=SERVICE)

    codes = unavailable(ended)

    assert set(codes) == {k for k in BROWSER_KINDS if KINDS[k].states is not None}
    assert codes["invite"] == "ended"


def test_a_lasting_reason_comes_before_the_state() -> None:
    ringing_p2p = Call(kind=P2P, state="incoming")

    assert unavailable(ringing_p2p)["mute_bot"] == "group_only"


def test_every_reason_is_one_line_ending_in_a_full_stop() -> None:
    assert all(s.endswith(".") and "\n" not in s for s in REASONS.values())


# --- the app's permissions -------------------------------------------------------------

EVERY_ROLE = {
    "Calls.Initiate.All",
    "Calls.InitiateGroupCall.All",
    "Calls.JoinGroupCall.All",
    "Calls.AccessMedia.All",
    "OnlineMeetings.ReadWrite.All",
}


def test_a_control_needing_a_missing_permission_is_not_offered_and_names_it() -> None:
    ringing = Call(kind=P2P, state="incoming", media_config_kind=SERVICE)
    roles = EVERY_ROLE - {"Calls.Initiate.All"}

    assert unavailable(ringing, roles)["redirect"] == "permission"
    assert "redirect" not in unavailable(ringing, EVERY_ROLE)
    assert availability(ringing, "redirect", roles) == (
        "Teams lets a bot redirect a call only with the application permission "
        "Calls.Initiate.All, which the app's access token lacks (an admin grants "
        "it in Entra ID)."
    )


def test_unknown_roles_hold_nothing_against_a_control() -> None:
    meeting = Call(kind=MEETING, state="established", media_config_kind=APP)

    assert "invite" not in unavailable(meeting, None)
    assert unavailable(meeting, set())["invite"] == "permission"
    assert "Calls.InitiateGroupCall.All" in (
        availability(meeting, "invite", set()) or ""
    )


def test_every_permission_a_kind_needs_is_one_the_panel_knows() -> None:
    needs = {row.needs for row in KINDS.values() if row.needs}

    assert needs == EVERY_ROLE
    assert needs <= set(KNOWN_PERMISSIONS)


@pytest.fixture
def roles_kept() -> Any:
    yield app_permissions.remember_roles
    app_permissions.forget_roles()


@pytest.mark.django_db
def test_the_service_refuses_what_the_kept_roles_lack(
    bob: Any, roles_kept: Any
) -> None:
    call = CallFactory(kind=MEETING, media_config_kind=SERVICE)
    roles_kept(EVERY_ROLE - {"Calls.InitiateGroupCall.All"})

    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            "invite", actor=bob, call=call, params={"target": {"user_id": USER}}
        )
    with pytest.raises(ActionRefusedError) as placing:
        request_action(
            "place_group_call",
            actor=bob,
            params={"targets": [{"user_id": USER}]},
        )

    assert refused.value.code == placing.value.code == "not_offered"
    assert "Calls.InitiateGroupCall.All" in refused.value.message
    assert "Calls.InitiateGroupCall.All" in placing.value.message
    assert board_row(call)["unavailable"]["invite"] == "permission"


@pytest.mark.django_db
def test_with_the_permission_kept_the_service_queues(bob: Any, roles_kept: Any) -> None:
    call = CallFactory(kind=MEETING, media_config_kind=SERVICE)
    roles_kept(EVERY_ROLE)

    with mock.patch("callbot.calls.enqueue.send_on_commit"):
        action = request_action(
            "invite", actor=bob, call=call, params={"target": {"user_id": USER}}
        )

    assert action.status == "queued"
    assert "invite" not in board_row(call)["unavailable"]


def board_row(call: Call) -> Any:
    return call_summaries([Call.objects.get(pk=call.pk)])[0]
