"""Envelope parsing and the contract's dispatch rule, without a database."""

from __future__ import annotations

import gc
import json

import orjson
import pytest

from callbot.graph import wire_json
from callbot.graph.notifications import (
    MAX_NOTIFICATIONS_PER_BATCH,
    YOUNG_FIRST_BYTES,
    BatchTooLargeError,
    MalformedNotification,
    Notification,
    NotificationFormatError,
    ResourceKind,
    batch_call_keys,
    call_keys,
    check_notification_batch,
    classify,
    parse_notification_batch,
    peek_batch,
)
from tests.conftest import load_fixture


@pytest.mark.parametrize(
    ("url", "kind", "call_id", "op"),
    [
        ("/communications/calls/abc", ResourceKind.CALL, "abc", None),
        ("communications/calls/abc/", ResourceKind.CALL, "abc", None),
        ("/app/calls/abc/participants", ResourceKind.PARTICIPANTS, "abc", None),
        (
            "/communications/calls/abc/operations/OP1",
            ResourceKind.OPERATION,
            "abc",
            "OP1",
        ),
        (
            "/communications/calls/abc/contentsharingsessions/s1",
            ResourceKind.CONTENT_SHARING,
            "abc",
            None,
        ),
        (
            "https://graph.microsoft.com/v1.0/communications/calls/abc",
            ResourceKind.CALL,
            "abc",
            None,
        ),
    ],
)
def test_resource_urls_are_classified(
    url: str, kind: ResourceKind, call_id: str, op: str | None
) -> None:
    assert classify(url) == (kind, call_id, op)


def test_call_notification_is_typed_and_ids_normalised() -> None:
    [n] = parse_notification_batch(
        json.dumps(load_fixture("operation_failed_uppercase.json"))
    )
    assert n.kind is ResourceKind.OPERATION
    assert n.call_key == "611f0b003a1c4d2e9b8f7a6c5d4e3f21"
    assert n.operation_key == "7a6b5c4d3e2f4a1b9c8d7e6f5a4b3c2d"
    assert n.operation is not None
    assert n.operation.status == "failed"
    assert n.operation.result_info is not None
    assert n.operation.result_info.subcode == 8508


def test_capitalised_enums_and_string_numbers_are_accepted() -> None:
    body = {
        "value": [
            {
                "changeType": "Updated",
                "resourceUrl": "/communications/calls/a",
                "resourceData": {
                    "state": "TransferAccepted",
                    "resultInfo": {"code": "500", "subCode": "7000", "message": "x"},
                    "someFutureField": {"kept": True},
                },
            }
        ]
    }
    [n] = parse_notification_batch(json.dumps(body))
    assert n.change_type == "updated"
    assert n.call is not None
    assert n.call.state == "transfer_accepted"
    assert n.call.result_info is not None
    assert (n.call.result_info.code, n.call.result_info.subcode) == (500, 7000)
    assert n.call.raw["someFutureField"] == {"kept": True}


def test_lone_participant_object_is_read_as_a_one_entry_roster() -> None:
    body = {
        "value": [
            {
                "changeType": "updated",
                "resourceUrl": "/communications/calls/a/participants",
                "resourceData": {"id": "p1", "isMuted": True},
            }
        ]
    }
    [n] = parse_notification_batch(json.dumps(body))
    assert n.roster is not None
    assert [p.id for p in n.roster.participants] == ["p1"]
    assert n.roster.is_delta is False


@pytest.mark.parametrize(
    "name",
    [
        "call_established.json",
        "tone_received.json",
        "operation_completed.json",
        "delta_roster_phone_joins.json",
    ],
)
def test_a_notification_is_identified_by_its_content_in_any_delivery(
    name: str,
) -> None:
    [n] = parse_notification_batch(json.dumps(load_fixture(name)))
    assert n.digest("m1", 0) == n.digest("m2", 3) == n.digest()
    [same] = parse_notification_batch(json.dumps(load_fixture(name), indent=2))
    assert same.digest("m3", 1) == n.digest()


def test_a_full_roster_is_identified_by_its_delivery() -> None:
    # The same full roster legitimately comes back (a mute, then an unmute).
    [n] = parse_notification_batch(json.dumps(load_fixture("roster_two_join.json")))
    assert n.is_full_roster
    assert n.digest("m1", 0) == n.digest("m1", 0)
    assert n.digest("m1", 0) != n.digest("m2", 0)
    assert n.digest("m1", 0) != n.digest("m1", 1)
    assert n.digest() == n.content_digest


def test_oversized_batch_is_refused() -> None:
    item = load_fixture("call_established.json")["value"][0]
    too_many = MAX_NOTIFICATIONS_PER_BATCH + 1
    with pytest.raises(BatchTooLargeError, match="at most"):
        parse_notification_batch(json.dumps({"value": [item] * too_many}))


@pytest.mark.parametrize(
    "fixture",
    ["incoming_p2p_call.json", "roster_two_join.json", "operation_completed.json"],
)
def test_the_calls_a_body_names_are_read_as_parsing_reads_them(fixture: str) -> None:
    body = json.dumps(load_fixture(fixture)).encode()
    parsed = [n for n in parse_notification_batch(body) if isinstance(n, Notification)]

    assert batch_call_keys(body) == frozenset(call_keys(parsed))


def test_the_calls_of_a_batch_of_two_calls_are_both_read() -> None:
    first = load_fixture("incoming_p2p_call.json")["value"][0]
    other = dict(first, resourceUrl="/communications/calls/421f-0400-DEAD-beef")
    body = json.dumps({"value": [first, other]}).encode()

    keys = batch_call_keys(body)

    assert keys is not None
    assert len(keys) == 2
    assert "421f0400deadbeef" in keys


def large_roster_body() -> bytes:
    """A batch with one 1,000-person roster (over 500 KB)."""
    batch = load_fixture("roster_two_join.json")
    batch["value"][0]["resourceData"] *= 500
    return json.dumps(batch).encode()


def test_the_call_of_a_large_meetings_roster_is_read_too() -> None:
    body = large_roster_body()

    assert len(body) > 500_000
    assert batch_call_keys(body) == frozenset({"2c1f0c009e8d4c7ba6f5e4d3c2b1a098"})


def test_a_peeked_body_is_parsed_from_the_document_peeking_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = large_roster_body()
    parsed = parse_notification_batch(body)
    peeked = peek_batch(body)

    def decoded_again(text: str) -> None:
        raise AssertionError("the body was decoded twice")

    monkeypatch.setattr(wire_json, "loads", decoded_again)

    assert peeked.keys == frozenset(call_keys(parsed))  # type: ignore[arg-type]
    assert parse_notification_batch(body, peeked) == parsed


@pytest.mark.parametrize(
    "body",
    [
        # A byte order mark: parsing decodes the text after it.
        b"\xef\xbb\xbf" + json.dumps(load_fixture("roster_two_join.json")).encode(),
        # Digits past the Int64 range: parsing keeps them as written.
        json.dumps(
            {"value": [dict(load_fixture("roster_lee_muted.json")["value"][0], n=1)]}
        )
        .replace('"n": 1', '"n": 123456789012345678901234567890')
        .encode(),
    ],
)
def test_a_body_parsing_decodes_otherwise_is_decoded_again(body: bytes) -> None:
    peeked = peek_batch(body)

    assert peeked.document is None
    assert parse_notification_batch(body, peeked) == parse_notification_batch(body)
    [n] = parse_notification_batch(body, peeked)
    assert isinstance(n, Notification)
    if "n" in n.raw:
        assert n.raw["n"] == "123456789012345678901234567890"


def test_a_large_body_is_decoded_after_a_young_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = large_roster_body()
    assert len(body) >= YOUNG_FIRST_BYTES
    events: list[str] = []
    loads = orjson.loads

    def decode(text: bytes) -> object:
        events.append("decode")
        return loads(text)

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            events.append(f"collect {info['generation']}")

    monkeypatch.setattr(orjson, "loads", decode)
    gc.callbacks.append(record)
    try:
        peeked = peek_batch(body)
    finally:
        gc.callbacks.remove(record)

    assert peeked.document is not None
    assert events[:2] == ["collect 0", "decode"]


def test_what_was_peeked_of_another_body_is_not_taken() -> None:
    other = json.dumps(load_fixture("roster_lee_muted.json")).encode()
    body = json.dumps(load_fixture("roster_two_join.json")).encode()

    parsed = parse_notification_batch(body, peek_batch(other))

    assert parsed == parse_notification_batch(body)
    assert parsed != parse_notification_batch(other)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"value": {}}',
        b'{"value": [{"resourceUrl": "/communications/nothing"}]}',
        b'{"value": [{"changeType": "created"}]}',
        b'{"value": [{"resourceUrl": "/communications/calls/a\\u0000b"}]}',
        '{"value": [{"resourceUrl": "/communications/calls/caf\u00e9"}]}'.encode(
            "utf-16"
        ),
    ],
)
def test_a_body_whose_calls_cannot_be_told_has_no_keys(body: bytes) -> None:
    assert batch_call_keys(body) is None


def _roster_with_extra(extra: object) -> bytes:
    entry = {"id": "p1", "info": {"identity": {"user": {"id": "u1"}}}, "x": extra}
    return json.dumps(
        {
            "value": [
                {
                    "changeType": "updated",
                    "resourceUrl": "/communications/calls/c1/participants",
                    "resourceData": [entry],
                }
            ]
        }
    ).encode()


def _nested(levels: int) -> object:
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "decoy",
    ["", "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", '\\"]]]]\\\\', "{}[]"],
)
def test_a_notification_nested_past_the_limit_is_malformed_whatever_its_strings_hold(
    decoy: str,
) -> None:
    # The document 0, value 1, the notification 2, resourceData 3, the entry 4,
    # its "x" 5, the nested lists 6 to 5 + levels; level MAX_NESTING is cut.
    deepest_kept = wire_json.MAX_NESTING - 1 - 5
    for levels, malformed in ((deepest_kept, False), (deepest_kept + 1, True)):
        body = _roster_with_extra([decoy, _nested(levels), decoy])
        (parsed,) = parse_notification_batch(body)
        if malformed:
            assert isinstance(parsed, MalformedNotification)
            assert parsed.problem == (
                f"value[0] is nested deeper than {wire_json.MAX_NESTING} levels"
            )
        else:
            assert isinstance(parsed, Notification)
            assert parsed.roster is not None
            assert parsed.roster.keys == ("p1",)


def test_a_shallow_roster_is_read_as_the_walk_would_read_it() -> None:
    body = _roster_with_extra({"a": ["]", "\\"], "b": "{"})
    (parsed,) = parse_notification_batch(body)
    assert isinstance(parsed, Notification)
    assert parsed.raw == json.loads(body)["value"][0]


REFUSED = (NotificationFormatError, BatchTooLargeError)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"value": {}}',
        b'{"novalue": []}',
        json.dumps({"value": [{}] * (MAX_NOTIFICATIONS_PER_BATCH + 1)}).encode(),
    ],
)
def test_the_light_check_refuses_a_batch_as_parsing_does(body: bytes) -> None:
    with pytest.raises(REFUSED) as parsed:
        parse_notification_batch(body)
    with pytest.raises(REFUSED) as checked:
        check_notification_batch(body)

    assert type(checked.value) is type(parsed.value)
    assert str(checked.value) == str(parsed.value)


def test_the_light_check_counts_notifications_it_does_not_read() -> None:
    good = load_fixture("call_established.json")["value"][0]
    deep: object = "x"
    for _ in range(200):
        deep = [deep]
    body = json.dumps(
        {"value": [good, {"resourceUrl": "/nowhere"}, "text", {"resourceData": deep}]}
    ).encode()

    assert check_notification_batch(body) == 4
    parsed = parse_notification_batch(body)  # what the applier makes of it
    assert [type(n).__name__ for n in parsed] == [
        "Notification",
        "MalformedNotification",
        "MalformedNotification",
        "MalformedNotification",
    ]
