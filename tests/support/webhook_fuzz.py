"""Mutated notification batches for fuzzing the webhook, and what must hold after.

``batches()`` is a Hypothesis strategy of ``FuzzBatch``es: one to five
notifications shaped like the contract's (the wire fixtures of
``tests/fixtures/graph`` and the variants of contract §7-8: ids upper-cased and
undashed, no leading slash, ``.../operations/participants``, content sharing, a
lone participant object, ``resource`` without ``resourceUrl``), each on a call of
a small pool so batches meet the calls earlier ones made, then mutated: types
swapped, strings lengthened past their columns, NUL and lone surrogates put in,
numbers made huge or non-finite, nesting made deep, keys dropped, invalid UTF-8
written into strings, notifications repeated. The envelope stays valid: every
batch must be answered 202.

Some mutations are not JSON Python can write (``NaN`` as a token, a 5,000-digit
integer, 20,000 levels of ``[``, bytes that are not UTF-8): they are placed as
placeholder strings and substituted in the rendered body.

``ledger()``, ``broken_invariants()`` and ``redelivery_problems()`` are the
properties checked after each POST, shared by ``tests/calls/test_webhook_fuzz.py``
and ``bench/fuzz_webhook.py``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.models import Count, F

from hypothesis import strategies as st

from callbot.calls.models import (
    Action,
    Call,
    CallEvent,
    Meeting,
    Participant,
    QuarantinedNotification,
)
from callbot.graph.notifications import Notification, parse_notification_batch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "graph"
P2P = "611f0b00-3a1c-4d2e-9b8f-7a6c5d4e3f21"
MEETING = "2c1f0c00-9e8d-4c7b-a6f5-e4d3c2b1a098"
# The calls batches land on: the fixtures' two, one more, the same one written
# the way some documented examples write ids, and one past its column.
CALL_IDS = [
    P2P,
    MEETING,
    "4b1f0a00-6c2e-4f0b-9d1e-3a2b1c0d9e8f",
    "4B1F0A006C2E4F0B9D1E3A2B1C0D9E8F",
    "c" * 80,
]
MESSAGE_IDS = ["", "m-1", "m-2", "m-3"]


def _contract_variants() -> list[dict[str, Any]]:
    """Shapes of contract §7-8 the fixtures do not show."""
    base = f"/communications/calls/{P2P}"
    return [
        {  # §7.10: content sharing as an array, and by session without data
            "changeType": "created",
            "resourceUrl": f"{base}/contentsharingsessions",
            "resourceData": [
                {"@odata.type": "#microsoft.graph.contentSharingSession", "id": "s1"}
            ],
        },
        {"changeType": "deleted", "resourceUrl": f"{base}/contentsharingsessions/s1"},
        {  # §7.8: hold music without the leading slash and without an id
            "changeType": "deleted",
            "resourceUrl": f"communications/calls/{P2P}/operations/hold-1",
            "resourceData": {
                "@odata.type": "#microsoft.graph.startHoldMusicOperation",
                "status": "completed",
                "clientContext": "ctx-1",
            },
        },
        {  # §7.8: a multi-invite's operation named ".../operations/participants"
            "changeType": "deleted",
            "resourceUrl": f"{base}/operations/participants",
            "resourceData": {
                "@odata.type": "#microsoft.graph.inviteParticipantsOperation",
                "id": None,
                "status": "failed",
                "resultInfo": {"code": "403", "subcode": "7504", "message": "no"},
            },
        },
        {  # §7.2: only the legacy ``resource``; §4.1: a lone participant object
            "changeType": "updated",
            "resource": f"/app/calls/{MEETING}/participants",
            "resourceData": {"id": None, "info": {"identity": {}}},
        },
        {  # §7.5: upper-case enums, numbers as strings
            "changeType": "Updated",
            "resourceUrl": base.upper().replace("-", ""),
            "resourceData": {
                "state": "Established",
                "mediaState": {"audio": "Active"},
                "toneInfo": {"sequenceId": "7", "tone": "tonePound"},
            },
        },
    ]


def _shapes() -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    for path in sorted(FIXTURES.glob("*.json")):
        shapes.extend(json.loads(path.read_text())["value"])
    return shapes + _contract_variants()


SHAPES = _shapes()


def _on_call(notification: dict[str, Any], call_id: str) -> str:
    text = json.dumps(notification)
    for known in (P2P, MEETING):
        text = text.replace(known, call_id)
        text = text.replace(known.upper().replace("-", ""), call_id)
    return text


# Each shape on each call, as JSON text: loading one is the cheapest fresh copy.
_PLACED = [_on_call(shape, call_id) for shape in SHAPES for call_id in CALL_IDS]


# --- mutations -------------------------------------------------------------------

_MARKS = ["\x00", "\ud800", "\udfff", "\ufffd", "\U0001f600", "\u202e", "\\", '"']
_NUMBERS: list[Any] = [
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    -1,
    0,
    1e308,
    1.5,
    -0.0,
]
# Tokens json.dumps never writes.
_RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000]
_LENGTHS = [17, 65, 129, 256, 2001, 5000]
_DEPTHS = [39, 41, 100, 1_500, 20_000]
_BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82", b"\x80abc"]

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=6,
)


_KINDS = st.sampled_from(
    [
        "type",
        "lengthen",
        "mark",
        "number",
        "raw_number",
        "deep",
        "drop",
        "bad_utf8",
        "wrap",
    ]
)
_MARK = st.sampled_from(_MARKS)
_NUMBER = st.sampled_from(_NUMBERS)
_RAW_NUMBER = st.sampled_from(_RAW_NUMBERS)
_LENGTH = st.sampled_from(_LENGTHS)
_DEPTH = st.sampled_from(_DEPTHS)
_BAD = st.sampled_from(_BAD_UTF8)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``value`` (the root is ``()``)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _get(root, path[:-1])[path[-1]] = new
    return root


_TOKEN = "FUZZRAW"


@dataclass
class _Raw:
    """Placeholder strings and the raw bytes each stands for in the body."""

    texts: dict[str, bytes] = field(default_factory=dict)

    def add(self, raw: bytes) -> str:
        token = f"{_TOKEN}{len(self.texts)}QX"
        self.texts[token] = raw
        return token


@st.composite
def _mutated(draw: st.DrawFn, notification: Any, raw: _Raw) -> Any:
    paths = _paths(notification)
    path = paths[draw(st.integers(0, len(paths) - 1))]
    old = _get(notification, path)
    if isinstance(old, str) and old.startswith(_TOKEN):
        old = None  # a placeholder: edited, it would no longer be found whole
    kind = draw(_KINDS)
    if kind == "type":
        return _set(notification, path, draw(_values))
    if kind == "lengthen":
        text = old if isinstance(old, str) else str(old)
        return _set(notification, path, text + "x" * draw(_LENGTH))
    if kind == "mark":
        text = old if isinstance(old, str) else ""
        at = draw(st.integers(0, len(text)))
        mark = draw(_MARK)
        return _set(notification, path, text[:at] + mark + text[at:])
    if kind == "number":
        return _set(notification, path, draw(_NUMBER))
    if kind == "raw_number":
        token = raw.add(draw(_RAW_NUMBER).encode())
        return _set(notification, path, token)
    if kind == "deep":
        depth = draw(_DEPTH)
        nested = (
            b"[" * depth + b"]" * depth
            if draw(st.booleans())
            else b'{"a":' * depth + b"1" + b"}" * depth
        )
        return _set(notification, path, raw.add(nested))
    if kind == "drop":
        if path and isinstance(_get(notification, path[:-1]), dict):
            del _get(notification, path[:-1])[path[-1]]
        return notification
    if kind == "bad_utf8":
        text = json.dumps(old if isinstance(old, str) else "v", ensure_ascii=False)
        escaped = text[1:-1].encode("utf-8", "surrogatepass")
        bad = draw(_BAD)
        return _set(notification, path, raw.add(b'"' + bad + escaped + b'"'))
    # wrap: a list where an object was, an object where a list was
    wrapped = {"0": old} if isinstance(old, list) else [old]
    return _set(notification, path, wrapped)


_SHAPE = st.sampled_from(_PLACED)
_MUTATIONS = st.sampled_from([1, 2, 0, 1, 3, 1])
_MESSAGE_ID = st.sampled_from(MESSAGE_IDS)


@dataclass(frozen=True)
class FuzzBatch:
    body: bytes
    size: int
    message_id: str
    mutations: int


@st.composite
def batches(draw: st.DrawFn) -> FuzzBatch:
    """A signed-to-be webhook body: valid envelope, mutated notifications."""
    raw = _Raw()
    notifications: list[Any] = []
    mutations = 0
    for _ in range(draw(st.integers(1, 5))):
        if notifications and draw(st.integers(0, 9)) == 0:
            # The same notification twice in one batch.
            notifications.append(copy.deepcopy(draw(st.sampled_from(notifications))))
            continue
        notification: Any = json.loads(draw(_SHAPE))
        etag = draw(st.integers(-1, 10**6))
        if etag >= 0:
            # Objects may carry an etag (contract §7.2): notifications that differ
            # only there are new ones, not redeliveries.
            notification["@odata.etag"] = f'W/"{etag}"'
        for _ in range(draw(_MUTATIONS)):
            notification = draw(_mutated(notification, raw))
            mutations += 1
        notifications.append(notification)
    envelope: dict[str, Any] = {"value": notifications}
    if draw(st.booleans()):
        envelope = {"@odata.type": "#microsoft.graph.commsNotifications", **envelope}
    ascii_only = draw(st.booleans())
    body = json.dumps(envelope, ensure_ascii=ascii_only).encode(
        "utf-8", "surrogatepass"
    )
    for token, text in raw.texts.items():
        body = body.replace(f'"{token}"'.encode(), text)
    message_id = draw(_MESSAGE_ID) if draw(st.booleans()) else f"m-{draw(st.uuids())}"
    return FuzzBatch(body, len(notifications), message_id, mutations)


# --- properties ------------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    """What the database holds, to compare before and after one POST. Events and
    quarantined notifications are append-only: the newest id marks where they
    stood (counting them all would grow with the run)."""

    last_event: int
    last_quarantined: int
    calls: int
    versions: int
    participants: int
    meetings: int
    finished_actions: int


def _ledger_sql() -> str:
    def table(model: Any) -> str:
        return str(model._meta.db_table)

    # Table names from our models, no input: nothing to inject.
    return (
        f"SELECT (SELECT COALESCE(MAX(id), 0) FROM {table(CallEvent)}),"  # noqa: S608
        f" (SELECT COALESCE(MAX(id), 0) FROM {table(QuarantinedNotification)}),"
        f" (SELECT COUNT(*) FROM {table(Call)}),"
        f" (SELECT COALESCE(SUM(version), 0) FROM {table(Call)}),"
        f" (SELECT COUNT(*) FROM {table(Participant)}),"
        f" (SELECT COUNT(*) FROM {table(Meeting)}),"
        f" (SELECT COUNT(*) FROM {table(Action)} WHERE completed_at IS NOT NULL)"
    )


def ledger() -> Ledger:
    """One query: it runs twice per example."""
    with connection.cursor() as cursor:
        cursor.execute(_ledger_sql())
        row = cursor.fetchone()
    return Ledger(*(int(v) for v in row))


def redelivery_problems(batch: FuzzBatch, status: int, answer: Any) -> list[str]:
    """What a second delivery of ``batch`` under a new message id broke.

    Everything but a full roster is identified by its content, so it is a
    duplicate now; a full roster is identified by its delivery and may be stored
    (or quarantined) again.
    """
    if status != 202:
        return [f"redelivery under a new message id answered {status}: {answer}"]
    rosters = sum(
        1
        for n in parse_notification_batch(batch.body)
        if isinstance(n, Notification) and n.is_full_roster
    )
    if answer["duplicates"] < batch.size - rosters:
        return [f"redelivery under a new message id: {answer}, {rosters} full rosters"]
    return []


def broken_invariants(
    batch: FuzzBatch,
    status: int,
    answer: Any,
    before: Ledger,
    after: Ledger,
    *,
    whole: bool = True,
) -> list[str]:
    """Every property one POST of ``batch`` broke (empty when all hold).

    1. The envelope is valid, so the answer is 202: never a 4xx, never a 5xx.
    2. Every notification is stored, a duplicate, or quarantined, and the rows
       agree with the answer.
    3. No partial writes: a batch that stored nothing changed nothing but the
       quarantine. With ``whole``, over the whole database too: no call exists
       without an event (a quarantined notification leaves none behind), and every
       call's event count agrees with its events.
    """
    problems: list[str] = []
    if status != 202:
        return [f"answered {status}: {str(answer)[:300]}"]
    counts = (answer["stored"], answer["duplicates"], answer["quarantined"])
    if sum(counts) != batch.size:
        problems.append(f"stored+duplicates+quarantined {counts} != {batch.size}")
    events = CallEvent.objects.filter(pk__gt=before.last_event).count()
    if events != answer["stored"]:
        problems.append(f"{events} events for {counts}")
    held = QuarantinedNotification.objects.filter(pk__gt=before.last_quarantined)
    if held.count() != answer["quarantined"]:
        problems.append(f"{held.count()} quarantined for {counts}")
    unchanged = replace(
        after, last_event=before.last_event, last_quarantined=before.last_quarantined
    )
    if answer["stored"] == 0 and unchanged != before:
        problems.append(f"nothing stored, yet {before} became {after}")
    if not whole:
        return problems
    orphans = Call.objects.filter(events__isnull=True).values_list(
        "graph_id", flat=True
    )
    if orphans:
        problems.append(f"calls without events: {list(orphans)[:3]}")
    mismatched = (
        Call.objects.annotate(n=Count("events"))
        .exclude(event_count=F("n"))
        .values_list("graph_id", flat=True)
    )
    if mismatched:
        problems.append(f"event_count disagrees with events: {list(mismatched)[:3]}")
    return problems
