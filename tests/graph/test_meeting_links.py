"""Every join link Teams hands out (contract §9): the classic meetup-join link and
the short /meet/<id>?p=<passcode> link, and typed meeting ids and passcodes."""

from __future__ import annotations

import pytest

from callbot.graph.meetings import (
    JoinUrlError,
    MeetingCoordinates,
    MeetingIdLink,
    clean_join_meeting_id,
    clean_passcode,
    parse_meeting_link,
)
from tests.graph.test_meetings import CONTRACT_URL, ORGANIZER, TENANT, THREAD


def test_a_classic_link_gives_chat_and_organizer_coordinates() -> None:
    coords = parse_meeting_link(CONTRACT_URL)

    assert isinstance(coords, MeetingCoordinates)
    assert (coords.thread_id, coords.organizer_id, coords.tenant_id) == (
        THREAD,
        ORGANIZER,
        TENANT,
    )


@pytest.mark.parametrize(
    ("url", "join_id", "passcode"),
    [
        pytest.param(
            "https://teams.microsoft.com/meet/2345678901234?p=abcdEFGH",
            "2345678901234",
            "abcdEFGH",
            id="teams.microsoft.com",
        ),
        pytest.param(
            "https://teams.cloud.microsoft/meet/2345678901234?p=Xy7Zq2",
            "2345678901234",
            "Xy7Zq2",
            id="teams.cloud.microsoft",
        ),
        pytest.param(
            "https://teams.live.com/meet/9384756102938",
            "9384756102938",
            None,
            id="teams.live.com without passcode",
        ),
        pytest.param(
            "https://gov.teams.microsoft.us/meet/234567890123?p=Ab12",
            "234567890123",
            "Ab12",
            id="government cloud",
        ),
        pytest.param(
            "HTTPS://Teams.Microsoft.com/meet/2345678901234?p=abcdEFGH&anon=true",
            "2345678901234",
            "abcdEFGH",
            id="upper-case host, extra parameter",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/2345678901234/?p=abcdEFGH",
            "2345678901234",
            "abcdEFGH",
            id="trailing slash",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/234%20567%20890%20123?p=abcdEFGH",
            "234567890123",
            "abcdEFGH",
            id="id with encoded spaces",
        ),
        pytest.param(
            "Join: https%3A%2F%2Fteams.microsoft.com%2Fmeet%2F2345678901234"
            "%3Fp%3DabcdEFGH (from Outlook)",
            "2345678901234",
            "abcdEFGH",
            id="encoded inside text",
        ),
    ],
)
def test_a_short_link_names_the_meeting_by_its_id_and_passcode(
    url: str, join_id: str, passcode: str | None
) -> None:
    link = parse_meeting_link(url)

    assert isinstance(link, MeetingIdLink)
    assert (link.join_meeting_id, link.passcode) == (join_id, passcode)
    assert "/meet/" in link.join_web_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param(
            "https://example.com/meet/2345678901234?p=abc",
            "not a Teams meeting link",
            id="other host",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/?p=abc",
            "no meeting id after /meet/",
            id="no id",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/12ab34?p=abc",
            "is not a Teams meeting id",
            id="letters in the id",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/12345?p=abc",
            "is not a Teams meeting id",
            id="id too short",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/2345678901234?p=a%20b",
            "passcode",
            id="passcode with a space",
        ),
        pytest.param(
            "https://teams.microsoft.com/meet/2345678901234?p=ab&p=cd",
            "more than one passcode",
            id="two passcodes",
        ),
        pytest.param(
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
            "no ?context=",
            id="classic link without context",
        ),
    ],
)
def test_a_bad_link_is_refused_saying_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(JoinUrlError, match=message.replace("?", r"\?")):
        parse_meeting_link(url)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("234 567 890 123", "234567890123"),
        ("2345678901234", "2345678901234"),
        ("234-567-890-123", "234567890123"),
        ("234\u00a0567\u00a0890\u00a0123", "234567890123"),
    ],
)
def test_a_typed_meeting_id_keeps_only_its_digits(typed: str, expected: str) -> None:
    assert clean_join_meeting_id(typed) == expected


@pytest.mark.parametrize("typed", ["", "12345", "abc 567 890 123", "1" * 21])
def test_a_typed_meeting_id_that_is_not_one_is_refused(typed: str) -> None:
    with pytest.raises(JoinUrlError, match="meeting id"):
        clean_join_meeting_id(typed)


def test_a_passcode_is_letters_and_digits_or_none() -> None:
    assert clean_passcode("  kT9vQ2 ") == "kT9vQ2"
    assert clean_passcode("") is None
    assert clean_passcode(None) is None
    with pytest.raises(JoinUrlError, match="passcode"):
        clean_passcode("kT9 vQ2")
