"""A large call's rows kept after a committed full roster (``rostercache``) stand
in for reading them again only while the call is as that batch wrote it: the
next roster's change, leaver, newcomer and returner are applied as from the
database, and a batch this process did not see commit makes it read them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from callbot.calls import rostercache
from callbot.calls.models import Call, Participant
from callbot.graph.resources import ParticipantResource
from tests.calls.test_participant_changes import LEE, crowd, history, ingest
from tests.calls.test_roster_digests import entry, without
from tests.conftest import load_fixture

pytestmark = pytest.mark.django_db

# Enough people for their rows to be kept.
SIZE = rostercache.MIN_ROWS


@pytest.fixture
def committed(
    django_capture_on_commit_callbacks: Any,
) -> Callable[[dict[str, Any], str], None]:
    """``ingest`` with what runs on commit run, as a committed batch has."""

    def run(batch: dict[str, Any], message_id: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            ingest(batch, message_id)

    return run


@pytest.fixture
def recalled(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each batch found the call's rows kept (True) or read them."""
    found: list[bool] = []
    recall = rostercache.recall

    def recording(call: Call) -> Any:
        rows = recall(call)
        found.append(rows is not None)
        return rows

    monkeypatch.setattr(rostercache, "recall", recording)
    return found


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the roster entries parsed."""
    ids: list[str] = []
    parse = ParticipantResource.parse

    def counting(data: Any) -> ParticipantResource:
        ids.append(data["id"])
        return parse(data)

    monkeypatch.setattr(ParticipantResource, "parse", staticmethod(counting))
    return ids


def present() -> int:
    return Participant.objects.filter(left_at__isnull=True).count()


def test_a_change_among_kept_rows_is_applied_and_the_only_entry_parsed(
    committed: Any, recalled: list[bool], parsed: list[str]
) -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(SIZE)
    committed(roster, "2")
    muted = copy.deepcopy(roster)
    entry(muted, LEE)["isMuted"] = True
    parsed.clear()

    committed(muted, "3")
    committed(roster, "4")  # and back

    assert recalled == [False, True, True]
    assert parsed == [LEE, LEE]
    assert not Participant.objects.get(graph_id=LEE).is_muted
    assert history("Lee Chen") == [
        ("joined", {}),
        ("changed", {"is_muted": [False, True]}),
        ("changed", {"is_muted": [True, False]}),
    ]
    assert present() == SIZE + 3


def test_someone_gone_from_a_kept_roster_leaves_and_a_newcomer_joins(
    committed: Any, recalled: list[bool], parsed: list[str]
) -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(SIZE)
    committed(roster, "2")
    newcomer = copy.deepcopy(entry(roster, LEE))
    newcomer["id"] = "5c1d6e8f-0000-4000-8000-00000000a11e"
    newcomer["info"]["identity"]["user"]["displayName"] = "Ali New"
    changed = without(roster, LEE)
    changed["value"][0]["resourceData"].append(newcomer)
    parsed.clear()

    committed(changed, "3")

    assert recalled == [False, True]
    assert parsed == [newcomer["id"]]
    assert Participant.objects.get(graph_id=LEE).left_at is not None
    assert Participant.objects.get(display_name="Ali New").left_at is None
    assert history("Lee Chen") == [
        ("joined", {}),
        ("left", {"removed_reason": ["", "left"]}),
    ]
    assert present() == SIZE + 3

    committed(roster, "4")  # Lee back with the entry they left with, Ali gone

    assert recalled == [False, True, True]
    assert Participant.objects.get(graph_id=LEE).left_at is None
    assert Participant.objects.get(display_name="Ali New").left_at is not None
    assert [event for event, _ in history("Lee Chen")] == ["joined", "left", "rejoined"]


def test_a_batch_committed_unseen_makes_the_next_one_read_the_rows(
    committed: Any, recalled: list[bool]
) -> None:
    # Lee muted by a batch whose commit this process did not see (another
    # process's): the rows kept before it must not decide Lee's next entry.
    ingest("meeting_join_established.json", "1")
    roster = crowd(SIZE)
    committed(roster, "2")
    muted = copy.deepcopy(roster)
    entry(muted, LEE)["isMuted"] = True
    ingest(muted, "3")  # what runs on commit does not run
    assert Participant.objects.get(graph_id=LEE).is_muted

    committed(roster, "4")  # Lee's entry as the kept rows have it

    assert recalled == [False, True, False]  # the third read the rows
    assert not Participant.objects.get(graph_id=LEE).is_muted


def test_the_call_ending_in_the_batch_of_a_kept_roster_reads_its_rows_whole(
    committed: Any, recalled: list[bool]
) -> None:
    ingest("meeting_join_established.json", "1")
    roster = crowd(SIZE)
    committed(roster, "2")
    muted = copy.deepcopy(roster)
    entry(muted, LEE)["isMuted"] = True
    ended = load_fixture("call_terminated.json")["value"][0]
    meeting = Call.objects.get()
    ended["resourceUrl"] = f"/communications/calls/{meeting.graph_id}"
    ended["resourceData"]["id"] = meeting.graph_id
    muted["value"].append(ended)

    committed(muted, "3")

    assert recalled == [False, True]
    people = Participant.objects.all()
    assert not people.filter(left_at__isnull=True).exists()
    assert set(people.values_list("removed_reason", flat=True)) == {"call_ended"}
    assert not people.filter(display_name="").exists()
    assert people.get(graph_id=LEE).is_muted
