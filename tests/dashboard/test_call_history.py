"""An ended call, complete: the roster as it was, the whole timeline a page at a
time, exports, and recordings for those who may hear them."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import wave
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import pytest

from callbot.calls import audit, services
from callbot.calls.ingest import end_call_locally
from callbot.calls.models import (
    Action,
    AuditEntry,
    Call,
    CallEvent,
    Participant,
    Recording,
)
from callbot.calls.states import ActionStatus
from callbot.calls.upkeep import store_recording
from callbot.ivr.models import IvrSession
from dashboard import timeline_reads
from dashboard.timeline import Cursor, CursorError
from tests.dashboard.sockets import ingest
from tests.factories import ActionFactory, CallFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short 440 Hz tone as 16-bit mono PCM WAV."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
            for n in range(int(seconds * rate))
        )
        out.writeframes(frames)
    return buffer.getvalue()


def finish(action: Action, status: str = ActionStatus.COMPLETED) -> None:
    Action.objects.filter(pk=action.pk).update(
        status=status, sent_at=timezone.now(), completed_at=timezone.now()
    )


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ended_call(bob: Any, media: Any, enqueued: list[int]) -> Call:
    """A meeting: the bot, Ana and Lee join; Bob mutes Lee; the bot (IVR) removes
    Lee; Ana shares her screen; a recording is kept; the call ends."""
    ingest("meeting_join_established.json", "1")
    ingest("roster_two_join.json", "2")
    call = Call.objects.get()
    lee = Participant.objects.get(display_name="Lee Chen")
    mute = services.request_action(
        "mute_participant", actor=bob, call=call, participant_id=lee.graph_id
    )
    finish(mute)
    ingest("roster_lee_muted.json", "3")
    remove = ActionFactory(
        call=call,
        kind=Action.Kind.REMOVE_PARTICIPANT,
        participant=lee,
        target=lee.display_name,
    )
    finish(remove)
    ingest("roster_ana_shares_lee_left.json", "4")
    prompt = ActionFactory(call=call, kind=Action.Kind.RECORD_RESPONSE)
    finish(prompt)
    store_recording(prompt, wav_bytes())
    end_call_locally(call.pk, "test over")
    call.refresh_from_db()
    return call


def test_the_roster_as_it_was_has_everyone_with_times_changes_and_who_muted_whom(
    ended_call: Call,
) -> None:
    people = {p.name: p for p in timeline_reads.roster_history(ended_call)}

    assert set(people) == {"Ana Lopez", "Lee Chen", "Helpdesk Bot"}
    assert all(p.left_at is not None for p in people.values())
    lee = [c.text for c in people["Lee Chen"].changes]
    assert lee == ["joined", "muted by bob", "left by the bot"]
    ana = [c.text for c in people["Ana Lopez"].changes]
    assert ana == ["joined", "started sharing", "left (the call ended)"]
    removal = people["Lee Chen"].changes[-1]
    assert removal.by_bot
    assert removal.actor == "callbot"


def test_the_call_page_renders_the_history_without_javascript(
    client: Client, carol: Any, ended_call: Call
) -> None:
    client.force_login(carol)
    response = client.get(reverse("dashboard:call", args=[ended_call.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Roster as it was" in html
    assert "muted by bob" in html
    assert "Lee Chen muted by bob" in html  # the timeline's roster line, by name
    assert "<summary>raw JSON</summary>" in html
    assert "&quot;resourceData&quot;" in html
    assert 'id="live-parts" hidden' in html or 'hidden id="live-parts"' in html
    # Carol may hear recordings: the player and a download link are there.
    recording = Recording.objects.get()
    src = reverse("dashboard:recording", args=[recording.pk])
    assert f'<audio controls preload="metadata" src="{src}"' in html
    assert f"{src}?download=1" in html


@pytest.mark.parametrize(
    ("direction", "fields", "says"),
    [
        (
            "incoming",
            {
                "source_display": "Ana Lopez",
                "source_id": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170",
            },
            "from <strong>Ana Lopez</strong> (<code>e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170</code>)",
        ),
        (
            "outgoing",
            {
                # The source of a call the bot placed is the bot itself.
                "source_id": "bot-app-0001",
                "targets": [{"display_name": "Lee Chen", "user_id": "b2a1"}],
            },
            "to <strong>Lee Chen</strong> (<code>b2a1</code>)",
        ),
    ],
)
def test_a_peer_to_peer_calls_page_names_the_other_end_instead_of_an_empty_roster(
    client: Client,
    carol: Any,
    direction: str,
    fields: dict[str, Any],
    says: str,
) -> None:
    """Teams sends no roster for a 1:1 call: the auditor still learns who was on it."""
    call = CallFactory(
        kind="peer_to_peer", direction=direction, state="terminated", **fields
    )
    client.force_login(carol)

    html = client.get(reverse("dashboard:call", args=[call.pk])).content.decode()

    assert 'id="other-party"' in html
    assert says in html
    assert "Nobody was on this call's roster." not in html


def test_a_peer_to_peer_roster_of_only_the_bot_still_names_the_caller(
    client: Client, carol: Any
) -> None:
    """Graph lists the bot on a 1:1 call but nobody at the far end: the roster as
    it was shows the bot's row and, beside it, the caller from the call's source."""
    call = CallFactory(
        kind="peer_to_peer",
        direction="incoming",
        state="terminated",
        source_display="Ana Lopez",
        source_id="e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170",
    )
    ParticipantFactory(call=call, display_name="Helpdesk Bot", is_bot=True)
    client.force_login(carol)

    html = client.get(reverse("dashboard:call", args=[call.pk])).content.decode()

    assert "Helpdesk Bot" in html
    assert 'id="other-party"' in html
    assert (
        "from <strong>Ana Lopez</strong> "
        "(<code>e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170</code>)" in html
    )


def test_a_peer_to_peer_roster_that_lists_the_far_end_names_it_once(
    client: Client, carol: Any
) -> None:
    call = CallFactory(
        kind="peer_to_peer",
        direction="incoming",
        state="terminated",
        source_display="Ana Lopez",
    )
    ParticipantFactory(call=call, display_name="Helpdesk Bot", is_bot=True)
    ParticipantFactory(call=call, display_name="Ana Lopez")
    client.force_login(carol)

    html = client.get(reverse("dashboard:call", args=[call.pk])).content.decode()

    assert 'id="other-party"' not in html
    assert '<th scope="row">Ana Lopez' in html


def test_an_ended_call_is_under_history_in_the_nav_and_a_live_one_under_live_calls(
    client: Client, carol: Any, ended_call: Call
) -> None:
    client.force_login(carol)
    live = CallFactory(state="established")
    ended_html = client.get(reverse("dashboard:call", args=[ended_call.pk])).content
    live_html = client.get(reverse("dashboard:call", args=[live.pk])).content

    history = reverse("dashboard:history").encode()
    board = reverse("dashboard:board").encode()
    assert b'href="%s" aria-current="page">History' % history in ended_html
    assert b'<p class="crumbs"><a href="%s">History</a>' % history in ended_html
    assert b'href="%s" aria-current="page">Live calls' % board in live_html
    assert b'<p class="crumbs"><a href="%s">Live calls</a>' % board in live_html


def test_one_line_per_action_with_its_final_outcome(ended_call: Call) -> None:
    mute = Action.objects.get(kind=Action.Kind.MUTE_PARTICIPANT)
    # The trail also holds the action's outcome (lifecycle.finish writes it).
    audit.record_outcome(mute)
    entries = timeline_reads.timeline_page(ended_call, size=500).entries

    lines = [e for e in entries if e.source == "action" and e.id == mute.pk]
    assert [(e.status, e.actor, e.by_bot) for e in lines] == [
        ("completed", "bob", False)
    ]
    # The request's and the outcome's audit entries are that same line.
    assert AuditEntry.objects.filter(action_ref=mute.pk).count() >= 1
    assert AuditEntry.objects.filter(detail__action_id=mute.pk).exists()
    assert not [e for e in entries if e.source == "audit" and "mute" in e.text]


def test_actions_the_bot_took_are_labelled_as_the_bot_s(
    client: Client, carol: Any, ended_call: Call
) -> None:
    entries = timeline_reads.timeline_page(ended_call, size=500).entries
    bots = [e for e in entries if e.source == "action" and e.by_bot]

    assert {e.text.split(" →")[0] for e in bots} == {
        "Remove Participant",
        "Record Response",
    }
    assert all(e.actor == "callbot" for e in bots)
    client.force_login(carol)
    html = client.get(reverse("dashboard:call", args=[ended_call.pk])).content.decode()
    assert html.count('class="actor bot"') >= 2
    assert '<span class="actor">bob</span>' in html


def test_pages_cover_the_timeline_with_no_gap_and_no_overlap_both_ways(
    ended_call: Call,
) -> None:
    # Many entries at one instant: the cursor's tie-break is what is under test.
    # Audit entries are never updated, so the clock stands still while they are written.
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now):
        for n in range(12):
            audit.record(None, f"note.{n}", "", ended_call, outcome="ok", detail={})
            ActionFactory(call=ended_call, kind=Action.Kind.PLAY_PROMPT)
    Action.objects.filter(kind=Action.Kind.PLAY_PROMPT).update(created_at=now)
    whole = timeline_reads.timeline_page(ended_call, size=500).entries
    keys = [(e.source, e.id) for e in whole]
    assert len(keys) == len(set(keys)) > 30

    forward: list[tuple[str, int]] = []
    page = timeline_reads.timeline_page(ended_call, size=7)
    assert not page.has_older
    while True:
        forward += [(e.source, e.id) for e in page.entries]
        if not page.has_newer:
            break
        page = timeline_reads.timeline_page(ended_call, after=page.newer, size=7)
    assert forward == keys

    backward: list[tuple[str, int]] = []
    page = timeline_reads.timeline_page(ended_call, latest=True, size=7)
    assert not page.has_newer
    while True:
        backward = [(e.source, e.id) for e in page.entries] + backward
        if not page.has_older:
            break
        page = timeline_reads.timeline_page(ended_call, before=page.older, size=7)
    assert backward == keys


def test_the_page_links_to_older_and_newer_pages(
    client: Client, carol: Any, ended_call: Call
) -> None:
    client.force_login(carol)
    url = reverse("dashboard:call", args=[ended_call.pk])
    first = timeline_reads.timeline_page(ended_call, size=3)

    html = client.get(url, {"size": 3}).content.decode()
    assert f"?after={first.newer}#history" in html
    second = client.get(url, {"size": 3, "after": first.newer}).content.decode()
    assert "?before=" in second
    assert client.get(url, {"after": "not-a-cursor"}).status_code == 400
    assert client.get(url, {"size": "0"}).status_code == 400


@pytest.mark.parametrize(
    "text", ["", "1.2", "a.b.c", "1.9.1", "1.1.-1", "9" * 40 + ".1.1"]
)
def test_a_cursor_this_page_did_not_write_is_refused(text: str) -> None:
    with pytest.raises(CursorError):
        Cursor.parse(text)


def test_tones_show_the_key_and_the_ivr_path_its_steps(
    client: Client, carol: Any
) -> None:
    ingest("incoming_p2p_call.json", "1")
    ingest("tone_received.json", "2")
    call = Call.objects.get()
    at = timezone.now()
    IvrSession.objects.create(
        call=call,
        flow_start="menu",
        history=[
            {"at": at.isoformat(), "step": "menu", "after": ""},
            {
                "at": (at + timedelta(seconds=2)).isoformat(),
                "step": "sales",
                "after": "0",
            },
        ],
    )
    entries = timeline_reads.timeline_page(call, size=500).entries

    tones = [e for e in entries if e.digits]
    assert [(e.digits, e.text) for e in tones] == [
        ("0", "call updated established key tone0")
    ]
    assert [e.text for e in entries if e.source == "ivr"] == [
        "IVR menu: step menu",
        "IVR menu: step sales (after 0)",
    ]
    client.force_login(carol)
    html = client.get(reverse("dashboard:call", args=[call.pk])).content.decode()
    assert '<kbd class="dtmf" title="key the caller pressed">0</kbd>' in html


def test_exports_carry_the_whole_timeline_and_are_audited(
    client: Client, carol: Any, ended_call: Call
) -> None:
    client.force_login(carol)
    whole = timeline_reads.timeline_page(ended_call, size=500).entries

    response = client.get(
        reverse("dashboard:call-export", args=[ended_call.pk, "jsonl"])
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    day = f"{ended_call.created_at:%Y%m%d}"
    assert (
        f"call-{ended_call.pk}-{day}-timeline.jsonl" in response["Content-Disposition"]
    )
    rows = [
        json.loads(line) for line in b"".join(response.streaming_content).splitlines()
    ]
    # The export's own audit entry is written before it streams, so it is in it.
    assert len(rows) == len(whole) + 1
    assert rows[-1]["text"] == f"carol: export.call call {ended_call.pk}"
    raw = [r for r in rows if r["source"] == "notification"]
    assert raw
    assert all(r["raw"]["resourceUrl"] for r in raw)

    response = client.get(reverse("dashboard:call-export", args=[ended_call.pk, "csv"]))
    assert response["Content-Type"].startswith("text/csv")
    table = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert len(table) == len(whole) + 2
    assert any(r["text"] == "Lee Chen muted by bob" for r in table)
    assert json.loads(next(r["raw"] for r in table if r["source"] == "notification"))

    # A name a spreadsheet would run as a formula is kept as text.
    audit.record(
        None,
        "note",
        "",
        ended_call,
        outcome="ok",
        detail={},
        actor_name="=HYPERLINK(1)",
    )
    response = client.get(reverse("dashboard:call-export", args=[ended_call.pk, "csv"]))
    table = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    row = next(r for r in table if r["source"] == "audit" and "HYPERLINK" in r["text"])
    assert (row["text"], row["actor"]) == ("'=HYPERLINK(1): note", "'=HYPERLINK(1)")

    exports = AuditEntry.objects.filter(action="export.call", actor=carol)
    assert sorted(e.detail["format"] for e in exports) == ["csv", "csv", "jsonl"]
    assert client.get(f"/calls/{ended_call.pk}/export.xml").status_code == 404


# --- recordings ----------------------------------------------------------------------------


@pytest.fixture
def recording(media: Any) -> Recording:
    call = CallFactory()
    action = ActionFactory(call=call, kind=Action.Kind.RECORD_RESPONSE)
    kept = store_recording(action, wav_bytes(0.5))
    assert kept is not None
    return kept


def audio(client: Client, recording: Recording, **headers: str) -> Any:
    return client.get(
        reverse("dashboard:recording", args=[recording.pk]), headers=headers
    )


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_a_recording_plays_whole_with_ranges_offered_and_the_play_audited(
    client: Client, carol: Any, recording: Recording
) -> None:
    client.force_login(carol)
    response = audio(client, recording)

    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert int(response["Content-Length"]) == recording.size
    assert body(response) == recording.audio.open("rb").read()
    assert response["Content-Disposition"].startswith("inline")
    played = AuditEntry.objects.get(action="recording.play")
    assert (played.actor, played.call_id) == (carol, recording.call_id)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-50", None, None)],
)
def test_a_single_byte_range_is_answered_206(
    client: Client,
    carol: Any,
    recording: Recording,
    header: str,
    start: int | None,
    end: int | None,
) -> None:
    client.force_login(carol)
    size = recording.size
    first, last = (
        (size - 50, size - 1)
        if start is None
        else (start, size - 1 if end is None else end)
    )
    response = audio(client, recording, Range=header)

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert int(response["Content-Length"]) == last - first + 1
    assert body(response) == recording.audio.open("rb").read()[first : last + 1]
    # Seeking is not a new play: only a request from the first byte is audited.
    assert AuditEntry.objects.filter(action="recording.play").count() == (first == 0)


@pytest.mark.parametrize(
    "header", ["bytes=999999-", "bytes=50-10", "bytes=x-y", "bytes=-0", "bytes=-"]
)
def test_a_range_the_file_cannot_serve_is_416(
    client: Client, carol: Any, recording: Recording, header: str
) -> None:
    client.force_login(carol)
    response = audio(client, recording, Range=header)

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{recording.size}"
    assert not AuditEntry.objects.filter(action__startswith="recording.").exists()


def test_a_download_has_a_sensible_name_and_is_audited(
    client: Client, ada: Any, recording: Recording
) -> None:
    client.force_login(ada)
    response = client.get(
        reverse("dashboard:recording", args=[recording.pk]), {"download": "1"}
    )

    assert response.status_code == 200
    day = f"{recording.created_at:%Y%m%d}"
    assert response["Content-Disposition"] == (
        f'attachment; filename="call-{recording.call_id}-{day}-recording-1.wav"'
    )
    assert (
        AuditEntry.objects.filter(action="recording.download", actor=ada).count() == 1
    )


# --- who may open what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "page", "export", "listen"),
    [
        ("anonymous", 302, 302, 302),
        ("dave", 403, 403, 403),  # an account without a role
        ("carol", 200, 200, 200),  # auditor
        ("bob", 200, 200, 403),  # supervisor: no recordings
        ("ada", 200, 200, 200),  # admin
    ],
)
def test_each_role_on_each_new_url(
    client: Client,
    request: pytest.FixtureRequest,
    recording: Recording,
    who: str,
    page: int,
    export: int,
    listen: int,
) -> None:
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    call_id = recording.call_id
    answers = {
        "page": client.get(reverse("dashboard:call", args=[call_id])).status_code,
        "csv": client.get(
            reverse("dashboard:call-export", args=[call_id, "csv"])
        ).status_code,
        "jsonl": client.get(
            reverse("dashboard:call-export", args=[call_id, "jsonl"])
        ).status_code,
        "listen": audio(client, recording).status_code,
        "download": client.get(
            reverse("dashboard:recording", args=[recording.pk]), {"download": "1"}
        ).status_code,
    }
    assert answers == {
        "page": page,
        "csv": export,
        "jsonl": export,
        "listen": listen,
        "download": listen,
    }
    if listen != 200:
        assert not AuditEntry.objects.filter(action__startswith="recording.").exists()
    # A page without the right shows no player, only why.
    if page == 200:
        html = client.get(reverse("dashboard:call", args=[call_id])).content.decode()
        assert ("<audio" in html) == (listen == 200)


def test_unknown_calls_and_recordings_are_404(client: Client, carol: Any) -> None:
    client.force_login(carol)
    assert client.get(reverse("dashboard:call", args=[999])).status_code == 404
    assert (
        client.get(reverse("dashboard:call-export", args=[999, "csv"])).status_code
        == 404
    )
    assert client.get(reverse("dashboard:recording", args=[999])).status_code == 404


def test_a_call_from_before_the_roster_log_still_lists_its_people(
    client: Client, carol: Any
) -> None:
    ingest("meeting_join_established.json", "1")
    ingest("roster_two_join.json", "2")
    call = Call.objects.get()
    call.participant_changes.all().delete()

    people = timeline_reads.roster_history(call)
    assert {p.name for p in people} == {"Ana Lopez", "Lee Chen", "Helpdesk Bot"}
    assert all(p.changes == [] for p in people)
    assert CallEvent.objects.filter(call=call).count() == 2


# --- a large meeting: the roster as it was a page at a time ------------------------------


def test_an_ended_call_says_who_was_on_it_not_live_counts(
    client: Client, carol: Any, ended_call: Call
) -> None:
    """Ana and Lee (the bot not counted), both present until Lee left: two at
    once at most."""
    summary = timeline_reads.roster_summary(ended_call)
    assert (summary.ever, summary.peak) == (2, 2)
    client.force_login(carol)
    html = client.get(reverse("dashboard:call", args=[ended_call.pk])).content.decode()
    assert "People on the call" in html
    assert 'id="f-people-ever" class="num">2<' in html
    assert "Most at once" in html
    assert 'id="f-muted"' not in html  # a live count, meaningless once ended
    assert 'id="f-pending"' not in html


def test_the_peak_counts_people_present_at_the_same_time() -> None:
    start = timezone.now() - timedelta(hours=1)
    call = CallFactory(state="terminated", terminated_at=start + timedelta(minutes=30))
    spans = [(0, 10), (5, 20), (12, None), (25, None)]  # minutes; None: to the end
    for n, (joined, left) in enumerate(spans):
        ParticipantFactory(
            call=call,
            graph_id=f"p{n}",
            display_name=f"P{n}",
            joined_at=start + timedelta(minutes=joined),
            left_at=None if left is None else start + timedelta(minutes=left),
        )
    ParticipantFactory(
        call=call, graph_id="bot", is_bot=True, joined_at=start, left_at=None
    )
    summary = timeline_reads.roster_summary(call)
    # 0-10 and 5-20 overlap (2), 12- and 5-20 (2), then 12- and 25- (2): never 3.
    assert (summary.ever, summary.peak) == (4, 2)
    assert summary.peak_at == start + timedelta(minutes=5)


def test_the_roster_pages_by_keyset_and_each_page_explains_its_people(
    client: Client, carol: Any, bob: Any
) -> None:
    start = timezone.now() - timedelta(hours=1)
    call = CallFactory(state="terminated", terminated_at=start + timedelta(hours=1))
    people = [
        ParticipantFactory(
            call=call,
            graph_id=f"p{n:02d}",
            display_name=f"Person {n:02d}",
            # Two people join at each instant: the id breaks the tie.
            joined_at=start + timedelta(seconds=n // 2),
        )
        for n in range(25)
    ]
    # Bob mutes the last person: the change is explained on the last page.
    last = people[-1]
    mute = ActionFactory(
        call=call, kind="mute_participant", participant=last, requested_by=bob
    )
    finish(mute)
    last.changes.create(
        call=call, at=timezone.now(), event="changed",
        changes={"is_muted": [False, True]},
    )  # fmt: skip
    seen: list[str] = []
    page = timeline_reads.roster_page(call, size=10)
    assert page.before == ""
    pages = [page]
    while page.after:
        page = timeline_reads.roster_page(call, after=page.after, size=10)
        pages.append(page)
    seen = [p.name for page in pages for p in page.people]
    assert seen == [p.display_name for p in people]
    assert [len(p.people) for p in pages] == [10, 10, 5]
    assert [c.text for c in pages[-1].people[-1].changes] == ["muted by bob"]
    # Back from the last page: the middle one again, with a way further back.
    back = timeline_reads.roster_page(call, before=pages[-1].before, size=10)
    assert [p.name for p in back.people] == [p.name for p in pages[1].people]
    assert back.before
    assert back.after
    # The page itself: 100 a page, links to the next.
    for n in range(25, 130):
        ParticipantFactory(
            call=call, graph_id=f"p{n}", joined_at=start + timedelta(minutes=10)
        )
    client.force_login(carol)
    url = reverse("dashboard:call", args=[call.pk])
    html = client.get(url).content.decode()
    assert html.count('<tr data-participant-id="p') == 100
    assert "roster_after=" in html
    cursor = html.split("roster_after=")[1].split("#")[0]
    rest = client.get(url, {"roster_after": cursor}).content.decode()
    assert rest.count('<tr data-participant-id="p') == 30
    assert client.get(url, {"roster_after": "nonsense"}).status_code == 400


# --- a recording goes with its call -------------------------------------------------------


def test_deleting_a_call_deletes_its_recordings_and_their_files(
    client: Client,
    carol: Any,
    recording: Recording,
    django_capture_on_commit_callbacks: Any,
) -> None:
    path = Path(recording.audio.path)
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        Call.objects.filter(pk=recording.call_id).delete()
    assert not Recording.objects.filter(pk=recording.pk).exists()
    assert not path.exists()
    client.force_login(carol)
    assert audio(client, recording).status_code == 404
    # The entries about the call stay (the audit trail keeps what happened).
    assert not AuditEntry.objects.filter(action="recording.play").exists()


def test_a_recording_without_its_call_is_not_served(
    client: Client, carol: Any, recording: Recording
) -> None:
    """A row left from before recordings went with their calls: no listener may
    reach it, and nothing is audited as played."""
    Recording.objects.filter(pk=recording.pk).update(call=None)
    client.force_login(carol)
    assert audio(client, recording).status_code == 404
    assert not AuditEntry.objects.filter(action="recording.play").exists()


def test_a_rolled_back_delete_keeps_the_file(
    recording: Recording, django_capture_on_commit_callbacks: Any
) -> None:
    path, pk = Path(recording.audio.path), recording.pk

    def delete_then_fail() -> None:
        with transaction.atomic():
            recording.delete()
            raise RuntimeError("rolled back")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        delete_then_fail()
    assert callbacks == []  # the file's deletion went with the rollback
    assert path.exists()
    assert Recording.objects.filter(pk=pk).exists()
