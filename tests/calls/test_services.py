"""request_action and the Action lifecycle, without Graph: validation, refusals,
the audit trail and the live deltas. The Celery task is captured, not run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

from django.utils import timezone

import pytest

from callbot.calls import services
from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, AuditEntry, Call
from callbot.calls.services import request_action
from tests.factories import CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

JOIN_URL = (
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_NjQ5ZTI3YjAtMGQ2ZS00"
    "%40thread.v2/0?context=%7b%22Tid%22%3a%22c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
    "%22%2c%22Oid%22%3a%228a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d%22%7d"
)


@pytest.fixture
def enqueued() -> Iterator[mock.MagicMock]:
    with mock.patch("callbot.calls.tasks.perform_action.delay") as delay:
        yield delay


@pytest.fixture
def group_call() -> Call:
    call = CallFactory(kind="group")
    ParticipantFactory(call=call, is_bot=True, graph_id=call.my_participant_id)
    return call


def test_supervisor_mute_is_queued_audited_published_and_enqueued_after_commit(
    bob: Any,
    group_call: Call,
    enqueued: mock.MagicMock,
    django_capture_on_commit_callbacks: Any,
    channel_layer: Any,
) -> None:
    lee = ParticipantFactory(call=group_call, display_name="Lee Chen")
    version = group_call.version

    with django_capture_on_commit_callbacks(execute=True):
        action = request_action(
            "mute_participant",
            actor=bob,
            call=group_call,
            participant_id=lee.graph_id,
            client_ip="192.0.2.7",
        )

    assert (action.status, action.kind, action.target) == (
        "queued",
        "mute_participant",
        "Lee Chen",
    )
    assert action.participant == lee
    assert action.requested_by == bob
    assert action.client_context == str(action.client_request_id)
    enqueued.assert_called_once_with(action.pk)
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.outcome, entry.client_ip) == (
        bob,
        "mute_participant",
        "requested",
        "192.0.2.7",
    )
    assert Call.objects.get(pk=group_call.pk).version == version + 1


def test_delta_carries_the_queued_action_and_the_pending_count(
    bob: Any, group_call: Call, enqueued: mock.MagicMock
) -> None:
    lee = ParticipantFactory(call=group_call)
    with mock.patch("callbot.calls.live.publish_on_commit") as publish:
        request_action(
            "mute_participant", actor=bob, call=group_call, participant_id=lee.graph_id
        )

    [[deltas], _] = publish.call_args
    [delta] = deltas
    assert delta.version == delta.base_version + 1
    [shape] = delta.actions
    assert (shape["kind"], shape["status"], shape["participant_id"]) == (
        "mute_participant",
        "queued",
        lee.graph_id,
    )
    assert delta.board["pending_actions"] == 1


@pytest.mark.parametrize(
    ("kind", "state", "code"),
    [
        ("mute_bot", "terminated", "call_ended"),
        ("answer", "established", "wrong_state"),
        ("hang_up", "incoming", "wrong_state"),
        ("play_prompt", "ringing", "wrong_state"),
        ("unmute_participant", "established", "unsupported"),
        ("teleport", "established", "invalid"),
    ],
)
def test_actions_the_call_state_does_not_allow_are_refused(
    bob: Any, enqueued: mock.MagicMock, kind: str, state: str, code: str
) -> None:
    call = CallFactory(
        state=state, terminated_at=timezone.now() if state == "terminated" else None
    )

    with pytest.raises(ActionRefusedError) as refused:
        request_action(kind, actor=bob, call=call, params={"uri": "https://x/y.wav"})

    assert refused.value.code == code
    assert str(refused.value) == refused.value.message
    assert not Action.objects.exists()
    assert AuditEntry.objects.get().outcome == "refused"
    enqueued.assert_not_called()


def test_unmuting_someone_else_is_refused_with_the_reason(bob: Any) -> None:
    with pytest.raises(ActionRefusedError) as refused:
        request_action("unmute_participant", actor=bob, call=CallFactory())
    assert "unmute themselves" in refused.value.message


def test_auditor_may_not_act_and_the_refusal_is_audited(
    carol: Any, group_call: Call
) -> None:
    with pytest.raises(ActionRefusedError) as refused:
        request_action("mute_bot", actor=carol, call=group_call)

    assert refused.value.code == "forbidden"
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.outcome, entry.call) == (carol, "refused", group_call)
    assert entry.detail["code"] == "forbidden"


def test_the_bot_may_act_without_a_user(
    group_call: Call, enqueued: mock.MagicMock
) -> None:
    action = request_action("mute_bot", actor=None, call=group_call)
    assert action.requested_by is None
    assert AuditEntry.objects.get().actor_name == "callbot"


def test_users_may_not_send_keep_alives(bob: Any, group_call: Call) -> None:
    with pytest.raises(ActionRefusedError) as refused:
        request_action("keep_alive", actor=bob, call=group_call)
    assert refused.value.code == "forbidden"


def test_unknown_call_and_absent_participant_are_refused(bob: Any) -> None:
    with pytest.raises(ActionRefusedError) as no_call:
        request_action("mute_bot", actor=bob, call=987654)
    assert no_call.value.code == "call_not_found"

    call = CallFactory(kind="group")
    gone = ParticipantFactory(call=call, left_at=timezone.now())
    with pytest.raises(ActionRefusedError) as no_one:
        request_action(
            "mute_participant", actor=bob, call=call, participant_id=gone.graph_id
        )
    assert no_one.value.code == "participant_not_found"


def test_muting_someone_in_a_peer_to_peer_call_is_refused(bob: Any) -> None:
    call = CallFactory(kind="peer_to_peer")
    ana = ParticipantFactory(call=call)
    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            "mute_participant", actor=bob, call=call, participant_id=ana.graph_id
        )
    assert refused.value.code == "not_offered"
    assert refused.value.message == (
        "Teams lets a bot mute someone only in group calls and meetings; "
        "this is a peer-to-peer call."
    )


@pytest.mark.parametrize(
    ("kind", "params", "fragment"),
    [
        ("invite", {"target": {"user_id": "not-a-guid"}}, "object id"),
        ("invite", {"target": {"phone": "555-0123"}}, "+E.164"),
        ("invite", {}, "Give a target"),
        ("send_dtmf_tones", {"tones": "12x"}, "0-9"),
        ("change_screen_sharing_role", {"role": "owner"}, "viewer or sharer"),
        ("update_recording_status", {"status": "paused"}, "recording"),
        ("play_prompt", {"uri": "file:///etc/passwd"}, "http(s) URL"),
        ("record_response", {"max_record_duration": 500}, "1 to 120"),
    ],
)
def test_bad_parameters_get_a_clear_error(
    bob: Any, group_call: Call, kind: str, params: dict[str, Any], fragment: str
) -> None:
    if kind == "change_screen_sharing_role":
        # Offered only with media the app hosts (contract §6.14).
        group_call.media_config_kind = "app_hosted"
        group_call.save(update_fields=["media_config_kind"])
    with pytest.raises(ActionRefusedError) as refused:
        request_action(kind, actor=bob, call=group_call, params=params)
    assert refused.value.code == "invalid"
    assert fragment in refused.value.message


def test_invite_by_phone_is_normalised(
    bob: Any, group_call: Call, enqueued: mock.MagicMock
) -> None:
    action = request_action(
        "invite",
        actor=bob,
        call=group_call,
        params={"target": {"phone": "+1 (425) 555-0123"}},
    )
    assert action.parameters["target"]["phone"] == "+14255550123"


def test_mute_everyone_spares_presenters_the_muted_and_the_bot(
    bob: Any, group_call: Call, enqueued: mock.MagicMock
) -> None:
    ana = ParticipantFactory(call=group_call)
    ParticipantFactory(call=group_call, role="presenter")
    ParticipantFactory(call=group_call, is_muted=True)
    lee = ParticipantFactory(call=group_call)

    actions = services.request_mute_all(call=group_call, actor=bob)

    assert {a.participant for a in actions} == {ana, lee}


@pytest.mark.django_db
def test_a_peer_to_peer_transfer_names_no_transferee_and_a_meeting_one_must() -> None:
    p2p = CallFactory(kind="peer_to_peer", state="established")
    meeting = CallFactory(kind="meeting", state="established")
    ana = ParticipantFactory(call=meeting, display_name="Ana Lopez")
    target = {"user_id": "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"}

    with pytest.raises(ActionRefusedError) as p2p_refused:
        request_action(
            "transfer",
            actor=None,
            call=p2p,
            params={"target": target, "transferee": ana.graph_id},
        )
    with pytest.raises(ActionRefusedError) as missing:
        request_action("transfer", actor=None, call=meeting, params={"target": target})
    with pytest.raises(ActionRefusedError) as gone:
        request_action(
            "transfer",
            actor=None,
            call=meeting,
            params={"target": target, "transferee": "not-in-the-call"},
        )
    transfer = request_action(
        "transfer",
        actor=None,
        call=meeting,
        params={"target": target, "transferee": ana.graph_id},
    )

    assert p2p_refused.value.code == "invalid"
    assert "needs the transferee" in missing.value.message
    assert gone.value.code == "participant_not_found"
    assert transfer.parameters["transferee"] == {
        "participant_id": ana.graph_id,
        "kind": "user",
        "id": ana.identity_id,
        "display_name": "Ana Lopez",
    }
    assert transfer.target.startswith("Ana Lopez to ")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("participant", "params"),
    [
        ("p\x00", {}),
        ("", {"uri": "https://prompts.example/a\x00.wav"}),
        ("", {"targets": [{"user": {"displayName": "x", "id": "\x00"}}]}),
        ("", {"\x00": "key"}),
    ],
)
def test_text_holding_a_nul_character_is_refused_not_a_database_error(
    bob: Any, group_call: Call, enqueued: mock.MagicMock, participant: str, params: Any
) -> None:
    """What the live socket passes on reaches the service as it came; PostgreSQL
    cannot store a NUL character, so the insert would fail with a database error
    instead of a refusal (the API's fuzzing found it)."""
    kind = "mute_participant" if participant else "play_prompt"
    with pytest.raises(ActionRefusedError) as refused:
        request_action(
            kind, actor=bob, call=group_call, participant_id=participant, params=params
        )
    assert refused.value.code == "invalid"
    assert "NUL" in refused.value.message
    assert not Action.objects.exists()
    audited = AuditEntry.objects.get(outcome="refused")
    assert audited.target == participant.replace("\x00", "\ufffd")


@pytest.mark.django_db(transaction=True)
def test_an_unknown_kind_holding_a_nul_character_is_refused_and_audited(
    bob: Any,
) -> None:
    with pytest.raises(ActionRefusedError) as refused:
        request_action("mute\x00", actor=bob, call=CallFactory())
    assert refused.value.code == "invalid"
    assert AuditEntry.objects.get(outcome="refused").action == "mute\ufffd"


@pytest.mark.parametrize(
    ("kind", "sentence"),
    [
        ("hang_up", "Cannot hang up a call that has ended."),
        ("mute_bot", "Cannot mute the bot in a call that has ended."),
    ],
)
def test_an_ended_call_refuses_in_a_plain_sentence(
    bob: Any, enqueued: mock.MagicMock, kind: str, sentence: str
) -> None:
    call = CallFactory(state="terminated", terminated_at=timezone.now())

    with pytest.raises(ActionRefusedError) as refused:
        request_action(kind, actor=bob, call=call)

    assert refused.value.message == sentence
