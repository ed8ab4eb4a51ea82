"""A full roster's entries are skipped by digest when their row took them last
(``rosters``): only a changed entry is parsed and only its row built, and a
skipped entry is never one that would have changed anything."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from callbot.calls import callwork
from callbot.calls.models import (
    Call,
    CallEvent,
    Participant,
    QuarantinedNotification,
)
from callbot.graph import wire_json
from callbot.graph.resources import ParticipantResource
from tests.calls.test_participant_changes import LEE, crowd, history, ingest
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

BOT = "0e8d7c6b-5a49-4382-9170-f6e5d4c3b2a1"


def entry(roster: dict[str, Any], participant_id: str) -> dict[str, Any]:
    entries = roster["value"][0]["resourceData"]
    return next(p for p in entries if p["id"] == participant_id)


def without(roster: dict[str, Any], participant_id: str) -> dict[str, Any]:
    smaller = copy.deepcopy(roster)
    entries = smaller["value"][0]["resourceData"]
    entries[:] = [p for p in entries if p["id"] != participant_id]
    return smaller


def test_one_change_in_a_large_roster_parses_one_entry_and_builds_one_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(300)
    ingest(roster, "2")
    muted = copy.deepcopy(roster)
    entry(muted, LEE)["isMuted"] = True
    parsed: list[Any] = []
    built: list[Any] = []
    parse, build = ParticipantResource.parse, callwork.StoredRows.build

    def counting_parse(data: Any) -> ParticipantResource:
        parsed.append(data)
        return parse(data)

    def counting_build(self: callwork.StoredRows, *args: Any) -> Participant:
        row = build(self, *args)
        built.append(row.graph_id)
        return row

    monkeypatch.setattr(ParticipantResource, "parse", staticmethod(counting_parse))
    monkeypatch.setattr(callwork.StoredRows, "build", counting_build)
    ingest(muted, "3")

    assert [p["id"] for p in parsed] == [LEE]
    assert built == [LEE]
    call = Call.objects.get()
    assert list(
        call.participants.filter(is_muted=True).values_list("graph_id", flat=True)
    ) == [LEE]
    assert call.participants.filter(left_at__isnull=True).count() == 303


def test_someone_back_with_the_entry_they_left_with_rejoins() -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(2)
    ingest(roster, "2")
    ingest(without(roster, LEE), "3")  # Lee left: absent from the full roster
    ingest(roster, "4")  # Lee's entry as it was before leaving

    lee = Participant.objects.get(graph_id=LEE)
    assert lee.left_at is None
    assert [event for event, _ in history("Lee Chen")] == ["joined", "left", "rejoined"]


def test_an_entry_sent_with_its_keys_in_another_order_changes_nothing() -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(2)
    ingest(roster, "2")
    version = Call.objects.get().version
    reordered = copy.deepcopy(roster)
    lee = entry(reordered, LEE)
    items = list(lee.items())
    lee.clear()
    lee.update(reversed(items))

    ingest(reordered, "3")  # another digest: Lee's entry is read again
    ingest(reordered, "4")  # and now skipped

    assert Call.objects.get().version == version
    assert history("Lee Chen") == [("joined", {})]
    assert Participant.objects.get(graph_id=LEE).entry_digest


def test_an_entry_taken_before_the_call_named_the_bot_is_taken_again_after(
    settings: Any,
) -> None:
    settings.GRAPH_CLIENT_ID = "00000000-0000-0000-0000-00000000beef"
    roster = crowd(0)
    ingest(roster, "1")  # the roster before the call says which leg is ours
    assert not Participant.objects.get(graph_id=BOT).is_bot
    ingest("meeting_join_established.json", "2")  # myParticipantId: BOT
    ingest(roster, "3")  # the same entries

    assert Participant.objects.get(graph_id=BOT).is_bot
    assert not Participant.objects.get(graph_id=LEE).is_bot


def test_an_unreadable_new_entry_in_a_known_roster_is_quarantined() -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(2)
    ingest(roster, "2")
    bad = copy.deepcopy(roster)
    entry(bad, LEE)["isMuted"] = "perhaps"

    ingest(bad, "3")

    kept = QuarantinedNotification.objects.get()
    assert kept.reason == "malformed"
    position = bad["value"][0]["resourceData"].index(entry(bad, LEE))
    assert (
        f"value[0].resourceData: participant {position} (id {LEE}): "
        "isMuted must be a boolean"
    ) in kept.error
    assert not Participant.objects.get(graph_id=LEE).is_muted
    assert Participant.objects.filter(left_at__isnull=True).count() == 5


def test_an_unreadable_roster_of_an_unknown_call_creates_no_call() -> None:
    bad = crowd(0)
    entry(bad, LEE)["info"] = []

    ingest(bad, "1")

    assert QuarantinedNotification.objects.get().reason == "malformed"
    assert not Call.objects.exists()


def test_rows_a_roster_leaves_alone_are_whole_when_the_call_ends_in_its_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The unchanged rows are read without their other columns; the call's end in
    # the same batch marks them left, which needs them whole (read again).
    ingest("meeting_join_established.json", "1")
    roster = crowd(30)
    ingest(roster, "2")
    muted = copy.deepcopy(roster)
    entry(muted, LEE)["isMuted"] = True
    ended = load_fixture("call_terminated.json")["value"][0]
    meeting = Call.objects.get()
    ended["resourceUrl"] = f"/communications/calls/{meeting.graph_id}"
    ended["resourceData"]["id"] = meeting.graph_id
    muted["value"].append(ended)

    ingest(muted, "3")

    assert "one notification at a time" not in caplog.text  # applied as a batch
    people = Participant.objects.all()
    assert people.count() == 33
    assert not people.filter(left_at__isnull=True).exists()
    assert set(people.values_list("removed_reason", flat=True)) == {"call_ended"}
    assert not people.filter(display_name="").exists()
    assert people.get(graph_id=LEE).is_muted
    assert history("Guest 7") == [
        ("joined", {}),
        ("left", {"removed_reason": ["", "call_ended"]}),
    ]


def test_rows_read_light_are_read_whole_when_their_entries_are_taken_after_all(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Loaded light (their digests matched), then the call names the bot earlier
    # in the same batch: every entry's digest changes and each row is built.
    settings.GRAPH_CLIENT_ID = "00000000-0000-0000-0000-00000000beef"
    roster = crowd(3)
    ingest(roster, "1")
    named = load_fixture("meeting_join_established.json")
    named["value"].extend(roster["value"])

    ingest(named, "2")

    assert "one notification at a time" not in caplog.text  # applied as a batch
    assert Participant.objects.get(graph_id=BOT).is_bot
    lee = Participant.objects.get(graph_id=LEE)
    assert (lee.display_name, lee.is_bot, lee.left_at) == ("Lee Chen", False, None)
    assert history("Guest 1") == [("joined", {})]
    assert history("Lee Chen") == [("joined", {})]


def test_a_full_roster_is_stored_as_sent_in_the_text_its_identity_was_taken_of(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(3)
    written: list[Any] = []
    write = wire_json.written

    def counting(value: Any) -> bytes | None:
        written.append(value)
        return write(value)

    monkeypatch.setattr(wire_json, "written", counting)
    ingest(roster, "2")

    stored = CallEvent.objects.get(resource_url__endswith="/participants")
    assert stored.payload == roster["value"][0]
    # Written once, for its identity (each entry is too, for its digest).
    assert [v for v in written if "resourceUrl" in v] == [roster["value"][0]]


def test_a_person_named_twice_ends_as_the_second_entry_says() -> None:
    # The first entry changes Lee's row; the second, Lee's entry as stored
    # before the batch, is compared with the row as the first left it.
    ingest("meeting_join_established.json", "1")
    roster = crowd(2)
    ingest(roster, "2")
    twice = copy.deepcopy(roster)
    muted = copy.deepcopy(entry(roster, LEE))
    muted["isMuted"] = True
    entries = twice["value"][0]["resourceData"]
    entries.insert(entries.index(entry(twice, LEE)), muted)

    ingest(twice, "3")

    assert not Participant.objects.get(graph_id=LEE).is_muted
    assert history("Lee Chen") == [
        ("joined", {}),
        ("changed", {"is_muted": [False, True]}),
        ("changed", {"is_muted": [True, False]}),
    ]
