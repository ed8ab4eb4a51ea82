"""Transfers, moves, placed calls and joins as the service cleans them: blind and
consultative transfers, the transferee out of a group call, inviting another
call's party with replacesCallId, phone calls needing the application instance,
and joins by short link or meeting id that ask before joining twice."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from callbot.calls import params, services
from callbot.calls.access import ActionRefusedError
from callbot.calls.models import Action, AuditEntry, Meeting, RedirectTarget
from tests.factories import CallFactory, MeetingFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

ANA = "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170"
LEE = "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"


def caller(user_id: str = ANA, name: str = "Ana Lopez") -> dict[str, Any]:
    return {"identity": {"user": {"id": user_id, "displayName": name}}}


def consult_call(**fields: Any) -> Any:
    """The bot's call with the transfer target (placed by the bot, to Lee)."""
    return CallFactory(
        direction="outgoing",
        targets=[{"user_id": LEE, "display_name": "Lee Chen"}],
        **fields,
    )


def refused(cleaner: params.Cleaner, raw: dict[str, Any], call: Any) -> str:
    with pytest.raises(ActionRefusedError) as exc:
        cleaner(raw, call)
    return exc.value.message


# --- transfer -------------------------------------------------------------------------


def test_a_blind_transfer_goes_to_the_given_target() -> None:
    call = CallFactory(source=caller())

    clean, label = params.transfer({"target": {"phone": "+1 425 555 0100"}}, call)

    assert clean == {"target": {"phone": "+14255550100", "display_name": ""}}
    assert label == "+14255550100"


def test_a_consultative_transfer_replaces_the_call_with_the_target() -> None:
    call = CallFactory(source=caller())
    other = consult_call()

    clean, label = params.transfer({"consult_call": str(other.pk)}, call)

    assert clean == {
        "replaces_call_id": other.graph_id,
        "consult_call": other.pk,
        "target": {"user_id": LEE, "display_name": "Lee Chen"},
    }
    assert label == "Lee Chen (consultative)"


def test_the_target_of_an_incoming_consult_call_is_its_caller() -> None:
    other = CallFactory(source=caller(LEE, "Lee Chen"))

    clean, _ = params.transfer({"consult_call": other.pk}, CallFactory())

    assert clean["target"] == {"user_id": LEE, "display_name": "Lee Chen"}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda call: call.pk, "must be another call", id="itself"),
        pytest.param(lambda call: 987654, "There is no call 987654", id="unknown"),
        pytest.param(
            lambda call: consult_call(state="terminated").pk,
            "must be an established call",
            id="ended",
        ),
        pytest.param(
            lambda call: consult_call(kind="group").pk,
            "must be a peer-to-peer call",
            id="group",
        ),
        pytest.param(
            lambda call: CallFactory(source={"identity": {"guest": {"id": "g"}}}).pk,
            "does not know who is on call",
            id="unknown party",
        ),
        pytest.param(lambda call: "call 3", "names a call by its number", id="text"),
        pytest.param(lambda call: True, "names a call by its number", id="boolean"),
    ],
)
def test_a_consult_call_that_cannot_be_used_is_refused(make: Any, message: str) -> None:
    call = CallFactory(source=caller())

    assert message in refused(params.transfer, {"consult_call": make(call)}, call)


def test_a_transfer_with_both_a_target_and_a_consult_call_is_refused() -> None:
    call = CallFactory(source=caller())
    raw = {"consult_call": consult_call().pk, "target": {"user_id": LEE}}

    assert "not both" in refused(params.transfer, raw, call)


def test_a_transfer_out_of_a_meeting_names_its_transferee() -> None:
    call = CallFactory(kind="meeting")
    ana = ParticipantFactory(call=call, identity_id=ANA, display_name="Ana Lopez")

    clean, label = params.transfer(
        {"target": {"user_id": LEE}, "transferee": ana.graph_id}, call
    )

    assert clean["transferee"] == {
        "participant_id": ana.graph_id,
        "kind": "user",
        "id": ANA,
        "display_name": "Ana Lopez",
    }
    assert label == f"Ana Lopez to {LEE}"


def test_a_transfer_out_of_a_group_call_without_a_transferee_is_refused() -> None:
    call = CallFactory(kind="group")

    message = refused(params.transfer, {"target": {"user_id": LEE}}, call)

    assert "needs the transferee" in message


def test_a_hidden_or_departed_transferee_is_refused() -> None:
    call = CallFactory(kind="group")
    hidden = ParticipantFactory(call=call, identity_kind="encrypted", identity_id="")
    gone = ParticipantFactory(call=call, left_at="2026-01-01T00:00:00Z")

    raw = {"target": {"user_id": LEE}}
    assert "hides who" in refused(
        params.transfer, {**raw, "transferee": hidden.graph_id}, call
    )
    assert "no longer in the call" in refused(
        params.transfer, {**raw, "transferee": gone.graph_id}, call
    )


def test_a_peer_to_peer_transfer_takes_no_transferee() -> None:
    call = CallFactory()
    raw = {"target": {"user_id": LEE}, "transferee": "someone"}

    assert "no transferee" in refused(params.transfer, raw, call)


def test_a_transfer_request_is_stored_with_what_the_performer_needs(bob: Any) -> None:
    call = CallFactory(source=caller())
    other = consult_call()

    action = services.request_action(
        "transfer", actor=bob, call=call, params={"consult_call": other.pk}
    )

    assert action.parameters["replaces_call_id"] == other.graph_id
    assert AuditEntry.objects.filter(actor=bob, action="transfer").exists()


# --- invite with replacesCallId ------------------------------------------------------


def test_moving_another_calls_party_in_invites_them_with_replaces_call_id() -> None:
    meeting_call = CallFactory(kind="meeting")
    other = CallFactory(source=caller(LEE, "Lee Chen"))

    clean, label = params.invite({"replaces_call": other.pk}, meeting_call)

    assert clean == {
        "replaces_call_id": other.graph_id,
        "target": {"user_id": LEE, "display_name": "Lee Chen"},
    }
    assert label == "Lee Chen"


def test_an_invite_by_target_still_works_and_checks_replaces_call_id() -> None:
    call = CallFactory()
    assert params.invite({"target": {"user_id": LEE}}, call)[0] == {
        "target": {"user_id": LEE, "display_name": ""}
    }
    assert "must be a call id" in refused(
        params.invite, {"target": {"user_id": LEE}, "replaces_call_id": "x"}, call
    )


# --- place a call --------------------------------------------------------------------


def test_a_phone_call_needs_the_application_instance(settings: Any) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""

    message = refused(params.place_call, {"target": {"phone": "+14255550100"}}, None)

    assert "GRAPH_APPLICATION_INSTANCE_ID" in message
    settings.GRAPH_APPLICATION_INSTANCE_ID = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
    assert params.place_call({"target": {"phone": "+14255550100"}}, None)[1] == (
        "+14255550100"
    )


def test_a_user_call_needs_no_application_instance(settings: Any) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""

    assert params.place_call({"target": {"user_id": ANA}}, None)[0]["target"] == {
        "user_id": ANA,
        "display_name": "",
    }


# --- join a meeting ------------------------------------------------------------------


def test_a_short_link_join_stores_the_meeting_by_its_id_and_passcode(bob: Any) -> None:
    url = "https://teams.microsoft.com/meet/2345678901234?p=abcdEFGH"

    joined = services.request_join(actor=bob, params={"join_web_url": url})

    meeting = joined.meeting
    assert (meeting.join_meeting_id, meeting.passcode) == ("2345678901234", "abcdEFGH")
    assert meeting.thread_id == ""
    assert joined.action is not None
    assert joined.action.parameters == {"meeting_id": meeting.pk}


def test_a_join_by_id_and_passcode_updates_a_changed_passcode(bob: Any) -> None:
    stored = Meeting.objects.create(join_meeting_id="234567890123", passcode="old1")

    joined = services.request_join(
        actor=bob, params={"join_meeting_id": "234 567 890 123", "passcode": "new2"}
    )

    assert joined.meeting.pk == stored.pk
    assert Meeting.objects.get(pk=stored.pk).passcode == "new2"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"join_meeting_id": "12 34"}, "9 to 20 digits"),
        ({"join_meeting_id": "234567890123", "passcode": "a b"}, "Passcode must"),
        ({"join_web_url": "https://example.com/meet/1"}, "Not a Teams join link"),
        ({}, "give its meeting id"),
    ],
)
def test_a_join_with_bad_coordinates_is_refused_and_audited(
    bob: Any, raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(ActionRefusedError, match=message):
        services.request_join(actor=bob, params=raw)

    assert AuditEntry.objects.filter(
        actor=bob, action="join_meeting", outcome="refused"
    ).exists()
    assert not Action.objects.exists()


def test_joining_a_meeting_the_bot_is_in_asks_first(bob: Any) -> None:
    meeting = MeetingFactory()
    in_it = CallFactory(kind="meeting", meeting=meeting)
    CallFactory(kind="meeting", meeting=meeting, state="terminated")

    asked = services.request_join(actor=bob, params={"meeting_id": meeting.pk})

    assert asked.action is None
    assert [c.pk for c in asked.already_in] == [in_it.pk]
    assert not Action.objects.exists()

    again = services.request_join(
        actor=bob, params={"meeting_id": meeting.pk}, again=True
    )
    assert again.action is not None
    assert again.action.kind == "join_meeting"


def test_an_auditor_cannot_create_meetings_by_joining(carol: Any) -> None:
    url = "https://teams.microsoft.com/meet/2345678901234?p=abcdEFGH"

    with pytest.raises(ActionRefusedError) as exc:
        services.request_join(actor=carol, params={"join_web_url": url})

    assert exc.value.code == "forbidden"
    assert not Meeting.objects.exists()


# --- a phone number needs the application instance -----------------------------------

PHONE = {"phone": "+14255550100", "display_name": "Front desk"}


@pytest.mark.parametrize(
    ("kind", "state"),
    [("redirect", "incoming"), ("transfer", "established")],
)
def test_redirecting_or_transferring_to_a_phone_needs_the_application_instance(
    bob: Any, settings: Any, kind: str, state: str
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    call = CallFactory(state=state, source=caller())

    with pytest.raises(ActionRefusedError) as refusal:
        services.request_action(kind, actor=bob, call=call, params={"target": PHONE})

    assert refusal.value.code == "unsupported"
    assert refusal.value.message == params.PHONE_NEEDS_INSTANCE
    assert "GRAPH_APPLICATION_INSTANCE_ID" in refusal.value.message
    assert not Action.objects.filter(call=call).exists()
    assert AuditEntry.objects.filter(action=kind, outcome="refused").exists()


def test_redirecting_a_phone_call_to_a_saved_phone_target_is_refused_alike(
    bob: Any, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    desk = RedirectTarget.objects.create(
        name="Desk", kind="phone", value="+14255550100"
    )
    call = CallFactory(state="incoming", source=caller())

    with pytest.raises(ActionRefusedError) as refusal:
        services.request_action(
            "redirect", actor=bob, call=call, params={"saved_target": desk.pk}
        )

    assert refusal.value.message == params.PHONE_NEEDS_INSTANCE


@pytest.mark.parametrize(
    ("kind", "state"),
    [("redirect", "incoming"), ("transfer", "established")],
)
def test_with_the_application_instance_a_phone_target_is_queued(
    bob: Any, settings: Any, kind: str, state: str
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
    call = CallFactory(state=state, source=caller())

    with mock.patch("callbot.calls.enqueue.send_on_commit"):
        action = services.request_action(
            kind, actor=bob, call=call, params={"target": PHONE}
        )

    assert action.parameters["target"]["phone"] == "+14255550100"
    assert params.phone_refused() == ""


def test_inviting_a_phone_number_needs_the_application_instance(
    bob: Any, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    call = CallFactory(kind="group", state="established", source=caller())

    with pytest.raises(ActionRefusedError) as refusal:
        services.request_action(
            "invite", actor=bob, call=call, params={"target": PHONE}
        )

    assert refusal.value.code == "unsupported"
    assert refusal.value.message == params.PHONE_NEEDS_INSTANCE
    assert not Action.objects.filter(call=call).exists()
    assert AuditEntry.objects.filter(action="invite", outcome="refused").exists()


def test_a_group_call_with_a_phone_number_among_its_targets_is_refused_whole(
    bob: Any, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = ""
    teams_user = {"user_id": "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4"}

    with pytest.raises(ActionRefusedError) as refusal:
        services.request_action(
            "place_group_call", actor=bob, params={"targets": [teams_user, PHONE]}
        )

    assert refusal.value.message == params.PHONE_NEEDS_INSTANCE
    assert not Action.objects.filter(kind="place_group_call").exists()


def test_with_the_application_instance_a_phone_number_is_invited(
    bob: Any, settings: Any
) -> None:
    settings.GRAPH_APPLICATION_INSTANCE_ID = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
    call = CallFactory(kind="group", state="established", source=caller())

    with mock.patch("callbot.calls.enqueue.send_on_commit"):
        action = services.request_action(
            "invite", actor=bob, call=call, params={"target": PHONE}
        )

    assert action.parameters["target"]["phone"] == "+14255550100"
