"""joinWebUrl → meeting coordinates (contract §9), and back."""

from __future__ import annotations

import pytest

from callbot.graph.meetings import (
    JoinUrlError,
    MeetingCoordinates,
    build_join_web_url,
    parse_join_web_url,
)

TENANT = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
ORGANIZER = "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918"
THREAD = "19:meeting_ZmE3YjQyNDItMzBkYS00NTQ1LWIwYjEtOTk3ZWQ4ZTc1YzA1@thread.v2"

# Verbatim from the contract's onlineMeeting example (§10.1).
CONTRACT_URL = (
    "https://teams.microsoft.com/l/meetup-join/"
    "19%3ameeting_ZmE3YjQyNDItMzBkYS00NTQ1LWIwYjEtOTk3ZWQ4ZTc1YzA1%40thread.v2/0"
    "?context=%7b%22Tid%22%3a%22c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a%22%2c%22Oid"
    "%22%3a%227f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918%22%7d"
)

CHANNEL_THREAD = "19:a3f0e0c1b2d34e5f8a9b0c1d2e3f4a5b@thread.tacv2"
CHANNEL_URL = (
    "https://teams.microsoft.com/l/meetup-join/"
    "19%3aa3f0e0c1b2d34e5f8a9b0c1d2e3f4a5b%40thread.tacv2/1509579179399"
    "?context=%7b%22Tid%22%3a%22c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a%22%2c%22Oid"
    "%22%3a%227f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918%22%2c%22MessageId%22%3a"
    "%221509579179399%22%7d"
)


def test_contract_example_gives_chat_and_organizer_coordinates() -> None:
    coordinates = parse_join_web_url(CONTRACT_URL)

    assert coordinates == MeetingCoordinates(
        join_web_url=CONTRACT_URL,
        thread_id=THREAD,
        message_id="0",
        reply_chain_message_id=None,
        tenant_id=TENANT,
        organizer_id=ORGANIZER,
    )


def test_chat_info_and_meeting_info_match_the_documented_join_request() -> None:
    coordinates = parse_join_web_url(CONTRACT_URL)

    # Contract §6.2, "Join a scheduled meeting".
    assert coordinates.chat_info() == {
        "@odata.type": "#microsoft.graph.chatInfo",
        "threadId": THREAD,
        "messageId": "0",
    }
    assert coordinates.meeting_info() == {
        "@odata.type": "#microsoft.graph.organizerMeetingInfo",
        "organizer": {
            "@odata.type": "#microsoft.graph.identitySet",
            "user": {
                "@odata.type": "#microsoft.graph.identity",
                "id": ORGANIZER,
                "tenantId": TENANT,
            },
        },
        "allowConversationWithoutHost": True,
    }


def test_meeting_info_can_require_the_host() -> None:
    info = parse_join_web_url(CONTRACT_URL).meeting_info(
        allow_conversation_without_host=False
    )

    assert info["allowConversationWithoutHost"] is False


def test_channel_meeting_carries_the_reply_chain_message_id() -> None:
    coordinates = parse_join_web_url(CHANNEL_URL)

    assert coordinates.thread_id == CHANNEL_THREAD
    assert coordinates.message_id == "1509579179399"
    assert coordinates.reply_chain_message_id == "1509579179399"
    assert coordinates.chat_info()["replyChainMessageId"] == "1509579179399"


def test_upper_case_escapes_decode_like_lower_case_ones() -> None:
    upper = (
        CONTRACT_URL.replace("%3a", "%3A").replace("%7b", "%7B").replace("%2c", "%2C")
    )

    coordinates = parse_join_web_url(upper)

    assert coordinates.thread_id == THREAD
    assert coordinates.tenant_id == TENANT
    assert coordinates.join_web_url == upper


def test_plus_in_the_context_decodes_to_a_space_as_in_dotnet() -> None:
    # WebUtility.UrlDecode turns "+" into a space; JSON does not mind the whitespace.
    url = CONTRACT_URL.replace("%2c%22Oid", "%2c+%22Oid").replace("%7b", "%7b+")

    coordinates = parse_join_web_url(url)

    assert coordinates.organizer_id == ORGANIZER
    assert coordinates.tenant_id == TENANT


def test_encoded_plus_stays_a_plus() -> None:
    url = build_join_web_url("19:meeting_a+b@thread.v2", "0", TENANT, ORGANIZER)
    assert "a%2bb" in url

    assert parse_join_web_url(url).thread_id == "19:meeting_a+b@thread.v2"


def test_double_encoded_link_is_decoded_twice() -> None:
    double = CONTRACT_URL.replace("%", "%25")
    assert "19%253ameeting_" in double

    coordinates = parse_join_web_url(double)

    assert coordinates.thread_id == THREAD
    assert coordinates.tenant_id == TENANT
    assert coordinates.organizer_id == ORGANIZER


def test_link_with_only_the_thread_double_encoded_still_parses() -> None:
    mixed = CONTRACT_URL.replace("19%3ameeting_", "19%253ameeting_")

    assert parse_join_web_url(mixed).thread_id == THREAD


def test_already_decoded_link_parses() -> None:
    decoded = (
        f"https://teams.microsoft.com/l/meetup-join/{THREAD}/0"
        f'?context={{"Tid":"{TENANT}","Oid":"{ORGANIZER}"}}'
    )

    assert parse_join_web_url(decoded).thread_id == THREAD


def test_link_inside_surrounding_text_is_found_like_the_samples_search() -> None:
    text = f"Join here: {CONTRACT_URL} (dial-in below)"

    coordinates = parse_join_web_url(text)

    assert coordinates.thread_id == THREAD
    assert coordinates.organizer_id == ORGANIZER


def test_extra_query_parameters_after_the_context_are_ignored() -> None:
    url = f"{CONTRACT_URL}&anon=true&deeplinkId=0d4b5c6e"

    assert parse_join_web_url(url).tenant_id == TENANT


def test_numeric_message_id_in_context_becomes_a_string() -> None:
    url = (
        f"https://teams.microsoft.com/l/meetup-join/{CHANNEL_THREAD}/1509579179399"
        f'?context={{"Tid":"{TENANT}","Oid":"{ORGANIZER}","MessageId":1509579179399}}'
    )

    assert parse_join_web_url(url).reply_chain_message_id == "1509579179399"


def test_build_writes_the_url_teams_writes() -> None:
    assert build_join_web_url(THREAD, "0", TENANT, ORGANIZER) == CONTRACT_URL
    assert (
        build_join_web_url(
            CHANNEL_THREAD, "1509579179399", TENANT, ORGANIZER, "1509579179399"
        )
        == CHANNEL_URL
    )


@pytest.mark.parametrize(
    ("thread_id", "message_id", "reply_chain_message_id"),
    [
        (THREAD, "0", None),
        (CHANNEL_THREAD, "1509579179399", "1509579179399"),
        ("19:meeting_x@thread.skype", "0", "0"),
    ],
)
def test_build_then_parse_round_trips(
    thread_id: str, message_id: str, reply_chain_message_id: str | None
) -> None:
    url = build_join_web_url(
        thread_id, message_id, TENANT, ORGANIZER, reply_chain_message_id
    )

    assert parse_join_web_url(url) == MeetingCoordinates(
        join_web_url=url,
        thread_id=thread_id,
        message_id=message_id,
        reply_chain_message_id=reply_chain_message_id,
        tenant_id=TENANT,
        organizer_id=ORGANIZER,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param(
            "https://example.com/l/meetup-join/19%3ax%40thread.v2/0?context=%7b%7d",
            "not a Teams meetup-join URL",
            id="other host",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/2345678901234?p=abcdEFGH",
            "not a Teams meetup-join URL",
            id="short meet link",
        ),
        pytest.param(
            "https://teams.live.com/meet/9384756102938",
            "not a Teams meetup-join URL",
            id="teams.live.com",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/channel/19%3aabc%40thread.tacv2/General"
            "?groupId=1&tenantId=2",
            "not a Teams meetup-join URL",
            id="channel link",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2"
            f"?context=%7b%22Tid%22%3a%22{TENANT}%22%2c%22Oid%22%3a%22{ORGANIZER}%22%7d",
            "missing the thread id or the message id",
            id="no message id",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/?context=%7b%7d",
            "missing the thread id or the message id",
            id="no thread id",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0/x"
            f"?context=%7b%22Tid%22%3a%22{TENANT}%22%2c%22Oid%22%3a%22{ORGANIZER}%22%7d",
            "extra path segments",
            id="extra segment",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
            "no ?context=",
            id="no context",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            "?anon=true",
            "no ?context=",
            id="other query",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            "?context=abc",
            "context is not a JSON object",
            id="context not an object",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            "?context=%7bTid%3a1%7d",
            "context is not valid JSON",
            id="context not JSON",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            f"?context=%7b%22Oid%22%3a%22{ORGANIZER}%22%7d",
            "no Tid",
            id="no Tid",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            f"?context=%7b%22Tid%22%3a%22{TENANT}%22%7d",
            "no Oid",
            id="no Oid",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            f"?context=%7b%22tid%22%3a%22{TENANT}%22%2c%22oid%22%3a%22{ORGANIZER}%22%7d",
            "keys are case-sensitive",
            id="lower-case keys",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            f"?context=%7b%22Tid%22%3a%22%22%2c%22Oid%22%3a%22{ORGANIZER}%22%7d",
            "no Tid",
            id="empty Tid",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
            f"?context=%7b%22Tid%22%3a%22{TENANT}%22%2c%22Oid%22%3a%22{ORGANIZER}"
            "%22%2c%22MessageId%22%3a%5b%5d%7d",
            "MessageId must be a string",
            id="MessageId a list",
        ),
    ],
)
def test_malformed_join_url_is_refused_with_a_helpful_message(
    url: str, message: str
) -> None:
    with pytest.raises(JoinUrlError, match=message.replace("?", r"\?")):
        parse_join_web_url(url)


def test_join_url_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a Teams meetup-join URL"):
        parse_join_web_url("https://example.com/")
