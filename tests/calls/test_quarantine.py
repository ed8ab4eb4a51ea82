"""A notification the webhook authenticated is never lost: one it cannot apply is
quarantined with the reason, and the rest of its batch is applied.

Each case puts one hard notification between two good ones (a peer-to-peer call
arriving, then established) and checks the answer, what was stored and what was
quarantined. The cases are the findings of posting mutated, validly signed
batches: values PostgreSQL cannot store (NUL, lone surrogates, ids past their
column, integers past their column), nesting too deep to parse, non-finite
numbers, wrong types in known fields, invalid UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.db import DataError, InterfaceError, OperationalError, connection
from django.test import Client

import pytest

from callbot.calls.models import Call, CallEvent, Participant, QuarantinedNotification
from callbot.calls.quarantine import is_outage
from tests.conftest import load_fixture
from tests.factories import MeetingFactory
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import counts, post

pytestmark = pytest.mark.django_db

P2P = "611f0b00-3a1c-4d2e-9b8f-7a6c5d4e3f21"
MEETING = "2c1f0c00-9e8d-4c7b-a6f5-e4d3c2b1a098"
ANA = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"

Case = Callable[[], Any]


def item(name: str) -> dict[str, Any]:
    notification: dict[str, Any] = load_fixture(name)["value"][0]
    return notification


def roster_with(**ana: Any) -> dict[str, Any]:
    """The two-person meeting roster, Ana's entry changed."""
    roster = item("roster_two_join.json")
    roster["resourceData"][0].update(ana)
    return roster


def guest_named(name: str) -> dict[str, Any]:
    """The meeting roster with Ana joined as a guest called ``name``."""
    return roster_with(
        info={"identity": {"guest": {"id": "guest-1", "displayName": name}}}
    )


def tone(sequence_id: Any) -> dict[str, Any]:
    notification = item("tone_received.json")
    notification["resourceData"]["toneInfo"]["sequenceId"] = sequence_id
    return notification


def result_code(code: Any) -> dict[str, Any]:
    notification = item("call_terminated.json")
    notification["resourceUrl"] = f"/communications/calls/{MEETING}"
    notification["resourceData"]["resultInfo"]["code"] = code
    return notification


def with_extra(value: Any) -> dict[str, Any]:
    """A meeting call update carrying an unknown property."""
    notification = item("meeting_join_established.json")
    notification["futureProperty"] = value
    return notification


def meeting_with(**changes: Any) -> dict[str, Any]:
    notification = item("meeting_join_established.json")
    notification["resourceData"].update(changes)
    return notification


def meeting_by_join_id(join_meeting_id: str) -> dict[str, Any]:
    """The meeting call update naming its meeting by join id (no chat thread)."""
    notification = meeting_with(
        meetingInfo={
            "@odata.type": "#microsoft.graph.joinMeetingIdMeetingInfo",
            "joinMeetingId": join_meeting_id,
            "passcode": "x",
        }
    )
    del notification["resourceData"]["chatInfo"]
    return notification


def raw(notification: dict[str, Any], placeholder: str, text: str) -> str:
    """``notification`` as JSON with ``"placeholder"`` replaced by raw JSON text
    (what json.dumps would never write: NaN, lone surrogates, deep nesting)."""
    return json.dumps(notification).replace(f'"{placeholder}"', text)


def batch_around(*hard: Any) -> bytes:
    """[incoming p2p call, ``*hard``, that call established], as the body's bytes.
    Each of ``hard`` is a notification, or the raw JSON text of one (str, bytes)."""
    parts = [item("incoming_p2p_call.json"), *hard, item("call_established.json")]
    texts = [p if isinstance(p, str | bytes) else json.dumps(p) for p in parts]
    encoded = [t.encode() if isinstance(t, str) else t for t in texts]
    return b'{"value": [' + b", ".join(encoded) + b"]}"


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# (case, its outcome, what the stored value or the quarantine reason must say)
APPLIED: dict[str, tuple[Case, Callable[[], Any], Any]] = {
    "NUL in a guest's display name": (
        lambda: guest_named("Gu\x00est"),
        lambda: Participant.objects.get(graph_id=ANA).display_name,
        "Gu\ufffdest",
    ),
    "NUL in an unknown property (jsonb)": (
        lambda: with_extra("a\x00b"),
        lambda: CallEvent.objects.get(call__graph_id=MEETING).payload["futureProperty"],
        "a\ufffdb",
    ),
    "NUL in a property name": (
        lambda: with_extra({"x\x00y": 1}),
        lambda: CallEvent.objects.get(call__graph_id=MEETING).payload["futureProperty"],
        {"x\ufffdy": 1},
    ),
    "lone surrogate in a display name": (
        lambda: raw(guest_named("PLACEHOLDER"), "PLACEHOLDER", r'"Gu\ud800est"'),
        lambda: Participant.objects.get(graph_id=ANA).display_name,
        "Gu\ufffdest",
    ),
    "invalid UTF-8 in a display name": (
        lambda: (
            json.dumps(guest_named("GuPLACEHOLDERest"))
            .encode()
            .replace(b"PLACEHOLDER", b"\xff\xfe")
        ),
        lambda: Participant.objects.get(graph_id=ANA).display_name,
        "Gu\ufffd\ufffdest",
    ),
    "display name longer than its column": (
        lambda: guest_named("G" * 1000),
        lambda: len(Participant.objects.get(graph_id=ANA).display_name),
        255,
    ),
    "subject longer than its column": (
        lambda: meeting_with(subject="S" * 5000),
        lambda: len(Call.objects.get(graph_id=MEETING).subject),
        255,
    ),
    "media state longer than its column": (
        lambda: meeting_with(mediaState={"audio": "active" * 20}),
        lambda: Call.objects.get(graph_id=MEETING).media_state_audio,
        ("active" * 20)[:16],
    ),
    "Infinity in an unknown property": (
        lambda: raw(with_extra("PLACEHOLDER"), "PLACEHOLDER", "-Infinity"),
        lambda: CallEvent.objects.get(call__graph_id=MEETING).payload["futureProperty"],
        "-Infinity",
    ),
    "integer past 2^63 in an unknown property": (
        lambda: with_extra(2**70),
        lambda: CallEvent.objects.get(call__graph_id=MEETING).payload["futureProperty"],
        str(2**70),
    ),
    "integer of 5,000 digits in an unknown property": (
        lambda: raw(with_extra("PLACEHOLDER"), "PLACEHOLDER", "9" * 5000),
        lambda: CallEvent.objects.get(call__graph_id=MEETING).payload["futureProperty"],
        "9" * 5000,
    ),
}

QUARANTINED: dict[str, tuple[Case, str, str]] = {
    "call id longer than its column": (
        lambda: {
            **item("call_established.json"),
            "resourceUrl": "/communications/calls/" + "c" * 100,
        },
        "unstorable",
        "call id is longer than 64",
    ),
    "participant id longer than its column": (
        lambda: roster_with(id="p" * 100),
        "unstorable",
        "participant id is longer than 64",
    ),
    "changeType longer than its column": (
        lambda: {**item("call_established.json"), "changeType": "u" * 40},
        "unstorable",
        "changeType is longer than 16",
    ),
    "nesting too deep to parse": (
        lambda: raw(with_extra("PLACEHOLDER"), "PLACEHOLDER", deep(100_000)),
        "malformed",
        "nested deeper than",
    ),
    "nesting deeper than stored": (
        lambda: raw(with_extra("PLACEHOLDER"), "PLACEHOLDER", deep(200)),
        "malformed",
        "nested deeper than",
    ),
    "NaN where a number belongs": (
        lambda: raw(tone("PLACEHOLDER"), "PLACEHOLDER", "NaN"),
        "malformed",
        "toneInfo.sequenceId must be a number",
    ),
    "a float too large for a number": (
        lambda: raw(result_code("PLACEHOLDER"), "PLACEHOLDER", "1e999"),
        "malformed",
        "resultInfo.code must be a number",
    ),
    "integer past 2^63 where a number belongs": (
        lambda: roster_with(rosterSequenceNumber=2**64),
        "malformed",
        "rosterSequenceNumber 18446744073709551616 is out of the Int64 range",
    ),
    "integer past Int64 in a numeric string": (
        lambda: tone(str(2**63)),
        "malformed",
        "toneInfo.sequenceId 9223372036854775808 is out of the Int64 range",
    ),
    "integer past Int32 where an Int32 belongs": (
        lambda: result_code(2**40),
        "malformed",
        "resultInfo.code 1099511627776 is out of the Int32 range",
    ),
    "a string where a bool belongs": (
        lambda: roster_with(isMuted="perhaps"),
        "malformed",
        "isMuted must be a boolean",
    ),
    "a list where an object belongs": (
        lambda: roster_with(info=[]),
        "malformed",
        "info must be an object",
    ),
    "a string where the meeting organizer belongs": (
        lambda: meeting_with(
            meetingInfo={
                "@odata.type": "#microsoft.graph.organizerMeetingInfo",
                "organizer": "someone",
            }
        ),
        "malformed",
        "organizer must be an object",
    ),
    "an object where a thread id belongs": (
        lambda: meeting_with(chatInfo={"threadId": {"id": "19:x"}}),
        "malformed",
        "threadId must be a string",
    ),
    "a string where the call belongs": (
        lambda: {**item("call_established.json"), "resourceData": "established"},
        "malformed",
        "a call must be an object",
    ),
    "a number where a notification belongs": (
        lambda: 7,
        "malformed",
        "must be an object",
    ),
}


def assert_goods_applied() -> None:
    call = Call.objects.get(graph_id=P2P)
    assert call.state == "established"
    assert list(call.events.values_list("change_type", flat=True)) == [
        "created",
        "updated",
    ]


@pytest.mark.parametrize("case", sorted(APPLIED))
def test_value_a_database_cannot_store_is_made_storable_and_applied(
    webhook: Client, token_issuer: TestTokenIssuer, case: str
) -> None:
    make, read, expected = APPLIED[case]

    response = post(webhook, batch_around(make()), token_issuer.bearer())

    assert response.status_code == 202, response.content
    assert counts(response.json()) == {"stored": 3, "duplicates": 0, "quarantined": 0}
    assert read() == expected
    assert_goods_applied()
    assert QuarantinedNotification.objects.count() == 0


@pytest.mark.parametrize("case", sorted(QUARANTINED))
def test_notification_that_cannot_be_applied_is_quarantined_and_the_rest_applied(
    webhook: Client, token_issuer: TestTokenIssuer, case: str
) -> None:
    make, reason, complaint = QUARANTINED[case]

    response = post(
        webhook,
        batch_around(make()),
        token_issuer.bearer(),
        X_Microsoft_Skype_Message_ID="m1",
    )

    assert response.status_code == 202, response.content
    assert counts(response.json()) == {"stored": 2, "duplicates": 0, "quarantined": 1}
    assert_goods_applied()
    kept = QuarantinedNotification.objects.get()
    assert (kept.reason, kept.position, kept.message_id) == (reason, 1, "m1")
    assert complaint in kept.error
    json.loads(kept.payload)  # kept as JSON
    # Nothing of it was applied: no call but the good ones' was created.
    assert list(Call.objects.values_list("graph_id", flat=True)) == [P2P]


def test_notification_whose_application_fails_is_quarantined_and_undone(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    # Two stored meetings share a join id, so storing the meeting a call names
    # by that id fails: a failure no parser check foresees.
    MeetingFactory.create_batch(2, join_meeting_id="123456789", thread_id="")

    response = post(
        webhook, batch_around(meeting_by_join_id("123456789")), token_issuer.bearer()
    )

    assert response.status_code == 202
    assert counts(response.json()) == {"stored": 2, "duplicates": 0, "quarantined": 1}
    assert_goods_applied()
    kept = QuarantinedNotification.objects.get()
    assert kept.reason == "failed"
    assert "MultipleObjectsReturned" in kept.error
    # The call it created and the event it stored were rolled back with it.
    assert not Call.objects.filter(graph_id=MEETING).exists()
    assert CallEvent.objects.count() == 2


def test_redelivered_batch_with_a_failing_notification_changes_nothing(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    MeetingFactory.create_batch(2, join_meeting_id="123456789", thread_id="")
    body = batch_around(meeting_by_join_id("123456789"))
    post(webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m1")
    version = Call.objects.get(graph_id=P2P).version

    again = post(
        webhook, body, token_issuer.bearer(), X_Microsoft_Skype_Message_ID="m1"
    )

    assert counts(again.json()) == {"stored": 0, "duplicates": 3, "quarantined": 0}
    assert Call.objects.get(graph_id=P2P).version == version
    assert QuarantinedNotification.objects.count() == 1
    assert not Call.objects.filter(graph_id=MEETING).exists()


def test_admin_lists_quarantined_notifications_read_only(
    webhook: Client, token_issuer: TestTokenIssuer, client: Client, alice: Any
) -> None:
    post(webhook, batch_around(roster_with(isMuted="perhaps")), token_issuer.bearer())
    kept = QuarantinedNotification.objects.get()
    client.force_login(alice)

    listing = client.get("/admin/calls/quarantinednotification/")
    detail = client.get(f"/admin/calls/quarantinednotification/{kept.pk}/change/")

    assert listing.status_code == 200
    assert b"isMuted must be a boolean" in listing.content
    assert detail.status_code == 200
    assert b"perhaps" in detail.content
    assert client.get("/admin/calls/quarantinednotification/add/").status_code == 403
    deleting = client.post(
        f"/admin/calls/quarantinednotification/{kept.pk}/delete/", {"post": "yes"}
    )
    assert deleting.status_code == 403
    assert QuarantinedNotification.objects.filter(pk=kept.pk).exists()


@pytest.mark.needs_postgres
def test_values_postgresql_refuses_no_longer_lose_their_batch(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    """Each of these made the whole batch 500 on every redelivery."""
    assert connection.vendor == "postgresql"
    hard = [
        json.dumps(guest_named("Gu\x00est")),
        json.dumps(with_extra("a\x00b")),
        raw(with_extra("PLACEHOLDER"), "PLACEHOLDER", r'"\udc00"'),
        json.dumps(
            {
                **item("call_established.json"),
                "resourceUrl": "/communications/calls/" + "c" * 100,
            }
        ),
        json.dumps(result_code(2**40)),
        json.dumps(tone(2**63)),
    ]
    body = batch_around(*hard)

    response = post(webhook, body, token_issuer.bearer())

    assert response.status_code == 202
    assert counts(response.json()) == {"stored": 5, "duplicates": 0, "quarantined": 3}
    assert_goods_applied()
    assert Participant.objects.get(graph_id=ANA).display_name == "Gu\ufffdest"


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (OperationalError("server closed the connection unexpectedly"), True),
        (InterfaceError("connection already closed"), True),
        (DataError("value too long for type character varying(64)"), False),
        (ValueError("A string literal cannot contain NUL (0x00) characters."), False),
    ],
)
def test_only_the_database_failing_counts_as_an_outage(
    exc: BaseException, outage: bool
) -> None:
    assert is_outage(exc) is outage


def test_a_program_limit_is_the_datas_fault_not_an_outage() -> None:
    class ProgramLimitExceeded(Exception):
        sqlstate = "54001"  # stack depth limit exceeded

    exc = OperationalError("stack depth limit exceeded")
    exc.__cause__ = ProgramLimitExceeded()
    assert is_outage(exc) is False
