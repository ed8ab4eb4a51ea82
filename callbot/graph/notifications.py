"""Parsing of Graph notification batches (contract §7.2).

``parse_notification_batch`` turns a webhook body into typed ``Notification``s. It
follows the contract's dispatch rule: classify by ``resourceUrl`` suffix (falling
back to ``resource``), strip a leading ``/`` and an ``/app`` or ``/communications``
prefix, take the call id from the segment after ``calls/``, and normalise ids
before lookup.

Only the envelope can be refused (``NotificationFormatError``, ``BatchTooLargeError``).
Inside a valid envelope every notification is kept: one that is not the shape the
contract describes comes back as a ``MalformedNotification`` naming its problem, so
the rest of its batch is applied and it can be quarantined. Values are read with
``wire_json`` so that all of them can be stored.

The bearer-token check lives in ``notification_auth``; nothing here imports Django.
"""

from __future__ import annotations

import enum
import gc
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, cast

import orjson

from callbot.graph import entrydigests, rosterbodies, wire_json
from callbot.graph.resources import (
    CallResource,
    JsonDict,
    OperationResource,
    ParticipantResource,
    ResourceFormatError,
    normalise_id,
    odata_type,
    read_int,
    read_str,
)

logger = logging.getLogger(__name__)

# More than a batch ever needs (Graph batches a handful; a large meeting's roster is
# one notification), few enough to apply in one request.
MAX_NOTIFICATIONS_PER_BATCH = 10_000


class NotificationFormatError(ValueError):
    """The body is not a notification batch the contract describes."""


class BatchTooLargeError(ValueError):
    """The batch holds more notifications than we apply in one request."""


class ResourceKind(enum.StrEnum):
    CALL = "call"
    PARTICIPANTS = "participants"
    OPERATION = "operation"
    CONTENT_SHARING = "content_sharing"


@dataclass(frozen=True)
class Roster:
    """The participants a roster notification carries.

    ``is_delta`` is true for delta-roster mode (contract §4.1: a ``deltaParticipants``
    object, or entries carrying ``rosterSequenceNumber``): only changed entries, to be
    applied in sequence. Otherwise the list is the full current roster.

    Only what ordering and keys need is read up front (each entry is an object,
    its ``id``, its ``rosterSequenceNumber``); an entry is parsed into a
    ``ParticipantResource`` when asked for (``participant``), since a full roster
    of a large meeting repeats a thousand entries of which one has changed
    (``calls.rosters`` skips the unchanged ones by their digest). A malformed
    entry raises ``ResourceFormatError`` then, not at parse time.
    """

    entries: tuple[JsonDict, ...]
    ids: tuple[str | None, ...]
    sequences: tuple[int | None, ...]
    is_delta: bool
    sequence_number: int | None
    _parsed: dict[int, ParticipantResource] = field(
        default_factory=dict, repr=False, compare=False
    )
    _digests: dict[bytes, list[str]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """Each entry's normalised id, ``""`` for an entry without one."""
        ids = self.ids
        if ids and None not in ids:
            # One pass over all of them (a large roster's thousand ids): ASCII
            # ids joined by a character none holds normalise as each alone.
            joined = "\x00".join(cast(tuple[str, ...], ids))
            if joined.isascii() and joined.count("\x00") == len(ids) - 1:
                return tuple(normalise_id(joined).split("\x00"))
        return tuple(normalise_id(i) if i else "" for i in ids)

    def participant(self, index: int) -> ParticipantResource:
        """Entry ``index`` parsed (once)."""
        parsed = self._parsed.get(index)
        if parsed is None:
            parsed = self._parsed[index] = ParticipantResource.parse(
                self.entries[index]
            )
        return parsed

    @property
    def participants(self) -> tuple[ParticipantResource, ...]:
        """Every entry parsed."""
        return tuple(self.participant(i) for i in range(len(self.entries)))

    def entry_digests(self, salt: bytes) -> list[str]:
        """A digest of each entry's JSON as sent, under ``salt`` (once per salt):
        equal digests mean the same entry in the same context."""
        digests = self._digests.get(salt)
        if digests is None:
            text = self.text if len(self.entries) >= entrydigests.MIN_ENTRIES else None
            digests = entrydigests.digest_entries(self.entries, salt, text)
            self._digests[salt] = digests
        return digests

    @cached_property
    def text(self) -> bytes | None:
        """The entries as a list, written by orjson (once: the entry digests
        and the notification's own text both use it); None where it cannot."""
        return entrydigests.list_text(self.entries)


def entry_digests(entries: Sequence[Any], salt: bytes) -> list[str]:
    """128 bits of BLAKE2b over ``salt`` and each entry's JSON in the order sent
    (``wire_json.compact``). The same entry with its keys in another order gets
    another digest, which costs a parse, never a missed change. A large list
    repeating most of the last one under the same salt hashes only what
    changed (``entrydigests``)."""
    return entrydigests.digest_entries(entries, salt)


def entry_digest(entry: JsonDict, salt: bytes) -> str:
    """The digest of one entry (``entry_digests``)."""
    return entry_digests([entry], salt)[0]


@dataclass(frozen=True)
class Notification:
    change_type: str  # created, updated, deleted (lower case)
    kind: ResourceKind
    resource_url: str  # as sent
    call_id: str  # as it appears in the URL
    call_key: str  # normalised for lookup
    operation_key: str | None  # normalised last segment of an operations URL
    raw: JsonDict = field(repr=False, compare=False)
    call: CallResource | None = None
    roster: Roster | None = None
    operation: OperationResource | None = None

    @property
    def is_full_roster(self) -> bool:
        return self.roster is not None and not self.roster.is_delta

    @cached_property
    def content_digest(self) -> str:
        return delivery_digest(self.raw)

    @cached_property
    def written(self) -> bytes | None:
        """``raw`` as orjson writes it (``wire_json.written``), once. A roster's
        entries are not written again where its list's text is written
        already (``Roster.text``): the same bytes, set in as they are."""
        roster = self.roster
        data = self.raw.get("resourceData") if isinstance(self.raw, dict) else None
        if (
            roster is not None
            and type(data) is list
            and tuple(data) == roster.entries
            and len(data) >= entrydigests.MIN_ENTRIES
            and (text := roster.text) is not None
        ):
            try:
                return orjson.dumps({**self.raw, "resourceData": orjson.Fragment(text)})
            except (TypeError, orjson.JSONEncodeError):
                pass
        return wire_json.written(self.raw)

    @property
    def payload(self) -> JsonDict:
        """``raw`` to store: with its text where a delivery digest wrote it
        already (``wire_json.Encoded``), so it is not written again."""
        text = self.__dict__.get("written")
        if text is None or not isinstance(self.raw, dict):
            return self.raw
        return wire_json.Encoded(self.raw, text)

    def digest(self, message_id: str = "", index: int = 0) -> str:
        """Identity of this notification: it is stored once, whatever batch brings it.

        Most notifications are identified by their content: a call update, a tone
        (its ``sequenceId``), an operation's outcome, a delta roster (its sequence
        numbers) are not sent twice with the same content, so a redelivery is
        recognised even under a new ``X-Microsoft-Skype-Message-ID``.

        A full roster is the exception: the same list legitimately comes back (Lee
        mutes, then unmutes), and nothing in it tells a repeat from a redelivery.
        With the platform's message id its identity is the delivery, (message id,
        position in the batch); a redelivery under a new message id is stored
        again, and applying it changes nothing unless the roster moved since.
        """
        if self.is_full_roster and message_id:
            return delivery_digest(self.raw, message_id, index, self.written)
        return self.content_digest


@dataclass(frozen=True)
class MalformedNotification:
    """A notification of a valid batch that is not the shape the contract
    describes: kept (to be quarantined) and never applied."""

    position: int
    problem: str
    raw: Any = field(repr=False, compare=False)

    @property
    def resource_url(self) -> str:
        if not isinstance(self.raw, dict):
            return ""
        url = self.raw.get("resourceUrl") or self.raw.get("resource")
        return url if isinstance(url, str) else ""

    @property
    def change_type(self) -> str:
        value = self.raw.get("changeType") if isinstance(self.raw, dict) else None
        return value if isinstance(value, str) else ""

    def digest(self, message_id: str = "", index: int = 0) -> str:
        """Its content, so a redelivery is recognised in any batch."""
        return delivery_digest(self.raw)


def delivery_digest(
    raw: Any, message_id: str = "", index: int = 0, written: bytes | None = None
) -> str:
    """SHA-256 of the notification's JSON with sorted keys; with a message id,
    of the message id, the position and the JSON in the order sent.

    A content digest must not depend on how the keys were ordered (the same
    notification redelivered in another batch), so it is of the sorted text. A
    delivery is its message id and position, redelivered as the same body: its
    JSON as sent (``wire_json.compact``) names it as well, and a large meeting's
    full roster is written that way many times faster than sorted
    (``written``: that text, where the caller has it)."""
    if not message_id:
        return hashlib.sha256(wire_json.canonical(raw)).hexdigest()
    prefix = f"{message_id}\x1f{index}\x1f".encode()
    return hashlib.sha256(prefix + (written or wire_json.compact(raw))).hexdigest()


def _split_path(url: str) -> list[str]:
    path = url.split("?", 1)[0]
    if "://" in path:  # an absolute URL: keep only the path
        path = path.split("://", 1)[1]
        path = path[path.find("/") :] if "/" in path else ""
    segments = [s for s in path.split("/") if s]
    # Drop anything before ".../calls/": /app, /communications, /v1.0, /beta.
    for i, segment in enumerate(segments):
        if segment.lower() == "calls":
            return segments[i:]
    return []


def classify(url: str) -> tuple[ResourceKind, str, str | None]:
    """(kind, call id, operation id or None) for a notification's resource URL."""
    segments = _split_path(url)
    if len(segments) < 2:
        raise NotificationFormatError(f"resourceUrl {url!r} does not name a call")
    call_id = segments[1]
    rest = [s.lower() for s in segments[2:]]
    if not rest:
        return ResourceKind.CALL, call_id, None
    if rest[0] == "participants":
        return ResourceKind.PARTICIPANTS, call_id, None
    if rest[0] == "operations":
        # One documented invite example uses ".../operations/participants".
        op = segments[3] if len(segments) > 3 else None
        return ResourceKind.OPERATION, call_id, op
    if rest[0] == "contentsharingsessions":
        return ResourceKind.CONTENT_SHARING, call_id, None
    raise NotificationFormatError(f"resourceUrl {url!r} names an unknown resource")


def _parse_roster(data: Any) -> Roster:
    if data is None:
        return _roster([], is_delta=False)
    if isinstance(data, dict) and odata_type(data) == "deltaParticipants":
        entries = data.get("participants") or []
        if not isinstance(entries, list):
            raise ResourceFormatError("deltaParticipants.participants must be an array")
        sequence = read_int(
            data.get("sequenceNumber"), "deltaParticipants.sequenceNumber"
        )
        return _roster(entries, is_delta=True, sequence_number=sequence)
    # The contract: accept a lone object where a list is expected.
    return _roster(data if isinstance(data, list) else [data], is_delta=None)


def _roster(
    entries: list[Any], *, is_delta: bool | None, sequence_number: int | None = None
) -> Roster:
    """A roster of ``entries``, reading of each only its id and sequence number;
    ``is_delta`` None: a delta if any entry carries a sequence number, whose
    highest is then the roster's."""
    ids: list[str | None] | None = _plain_ids(entries)
    sequences: list[int | None] = []
    if ids is not None:
        sequences = [None] * len(entries)
    else:
        ids = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise ResourceFormatError("a participant must be an object")
            ids.append(read_str(entry, "id"))
            sequences.append(
                read_int(entry.get("rosterSequenceNumber"), "rosterSequenceNumber")
            )
    if is_delta is None:
        numbered = [s for s in sequences if s is not None]
        is_delta = bool(numbered)
        sequence_number = max(numbered, default=None)
    return Roster(
        entries=tuple(entries),
        ids=tuple(ids),
        sequences=tuple(sequences),
        is_delta=is_delta,
        sequence_number=sequence_number,
    )


def _plain_ids(entries: list[Any]) -> list[str | None] | None:
    """The entries' ids if the roster is the usual full one, read in a few C
    loops instead of one of Python calls: objects, each with a string id or
    none and no sequence number. None otherwise (read entry by entry)."""
    if not all(type(entry) is dict for entry in entries):
        return None
    if any(entry.get("rosterSequenceNumber") is not None for entry in entries):
        return None
    ids = [entry.get("id") for entry in entries]
    if not all(type(i) is str for i in ids if i is not None):
        return None
    return ids


def parse_notification(item: Any, position: int) -> Notification:
    where = f"value[{position}]"
    if not isinstance(item, dict):
        raise NotificationFormatError(f"{where} must be an object")
    change_type = item.get("changeType")
    if not isinstance(change_type, str) or not change_type:
        raise NotificationFormatError(f"{where}.changeType is required")
    url = item.get("resourceUrl") or item.get("resource")
    if not isinstance(url, str) or not url:
        raise NotificationFormatError(f"{where} has neither resourceUrl nor resource")
    try:
        kind, call_id, operation_id = classify(url)
    except NotificationFormatError as exc:
        raise NotificationFormatError(f"{where}: {exc}") from None
    data = item.get("resourceData")
    notification = Notification(
        change_type=change_type.lower(),
        kind=kind,
        resource_url=url,
        call_id=call_id,
        call_key=normalise_id(call_id),
        operation_key=normalise_id(operation_id) if operation_id else None,
        raw=item,
    )
    try:
        if kind is ResourceKind.CALL:
            call_data = data if data is not None else {}
            if isinstance(call_data, list):  # "an entity or a collection"
                call_data = call_data[0] if call_data else {}
            return replace(notification, call=CallResource.parse(call_data))
        if kind is ResourceKind.PARTICIPANTS:
            return replace(notification, roster=_parse_roster(data))
        if kind is ResourceKind.OPERATION:
            op_data = data if data is not None else {}
            if isinstance(op_data, list):
                op_data = op_data[0] if op_data else {}
            operation = OperationResource.parse(op_data)
            op_key = notification.operation_key
            # ".../operations/participants" is not an id; prefer the body's id then.
            if operation.id and (op_key is None or op_key == "participants"):
                op_key = normalise_id(operation.id)
            return replace(notification, operation=operation, operation_key=op_key)
    except ResourceFormatError as exc:
        raise NotificationFormatError(f"{where}.resourceData: {exc}") from None
    return notification


def parse_notification_batch(
    body: bytes | str, peeked: PeekedBatch | None = None
) -> list[Notification | MalformedNotification]:
    """Parse a webhook body into its notifications, in array order.

    Raises ``NotificationFormatError`` naming the problem when the body is not a
    batch (not JSON, or not an object with a ``value`` array), and
    ``BatchTooLargeError`` past ``MAX_NOTIFICATIONS_PER_BATCH``. Within a batch
    nothing raises: a notification that cannot be read is a
    ``MalformedNotification``. Strings are cleaned, numbers bounded and nesting
    cut as ``wire_json`` describes. ``peeked``: what ``peek_batch`` read of the
    same body, whose document is then taken instead of decoding the body again
    (once: parsing may clean it in place).
    """
    text, items, plain = _batch_items(body, peeked)
    if plain:
        # Known when it was read (``rosterbodies.plain``): the same checks.
        strings = walk = False
    else:
        strings = wire_json.needs_cleaning(text)
        # Nothing to clean and no container nested too deep, as the text shows
        # (a lone surrogate, the one thing encoding refuses, means strings):
        # the walk ``sanitize`` makes over every container would change nothing.
        walk = strings or not wire_json.nested_within(
            text.encode(), wire_json.MAX_NESTING
        )
    return [_read(item, i, strings=strings, walk=walk) for i, item in enumerate(items)]


def check_notification_batch(body: bytes | str) -> int:
    """How many notifications a webhook body holds, raising what
    ``parse_notification_batch`` raises for it (the same checks, in the same
    order), without reading the notifications themselves.

    A body this accepts, ``parse_notification_batch`` parses: only the batch as
    a whole can be refused, a notification in it that cannot be read is a
    ``MalformedNotification``. The deferred webhook answers with this and
    leaves the parsing to the applier (``calls/inbox.py``), which parsed the
    body again anyway."""
    return len(_batch_items(body)[1])


def _batch_items(
    body: bytes | str, peeked: PeekedBatch | None = None
) -> tuple[str, list[Any], bool]:
    """The body's text, its ``value`` array and whether its document is known
    ``plain`` (``rosterbodies``), or the error refusing it. A large body not
    peeked is read as ``peek_batch`` reads it: decoded from a kept roster's
    where it repeats one, else whole and kept."""
    text = wire_json.decode_text(body)
    if peeked is None and type(body) is bytes and len(body) >= YOUNG_FIRST_BYTES:
        peeked = peek_batch(body)
    plain = False
    if peeked is not None and peeked.body and peeked.body == body:
        document = peeked.document
        plain = peeked.plain
    else:
        try:
            document = wire_json.loads(text)
        except ValueError as exc:
            raise NotificationFormatError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise NotificationFormatError("body must be a JSON object with a 'value' array")
    items = document.get("value")
    if not isinstance(items, list):
        raise NotificationFormatError("body must have a 'value' array of notifications")
    if len(items) > MAX_NOTIFICATIONS_PER_BATCH:
        raise BatchTooLargeError(
            f"batch has {len(items)} notifications; at most {MAX_NOTIFICATIONS_PER_BATCH}"
        )
    return text, items, plain


def _read(
    item: Any, position: int, *, strings: bool, walk: bool = True
) -> Notification | MalformedNotification:
    # The document is depth 0, its ``value`` array 1, each notification 2.
    cut = False
    if walk:
        item, cut = wire_json.sanitize(item, depth=2, strings=strings)
    if cut:
        return MalformedNotification(
            position,
            f"value[{position}] is nested deeper than {wire_json.MAX_NESTING} levels",
            item,
        )
    try:
        return parse_notification(item, position)
    except NotificationFormatError as exc:
        return MalformedNotification(position, str(exc), item)
    except Exception as exc:
        # A shape the parsers did not foresee: keep the notification, not the batch
        # hostage to it.
        logger.exception("could not read notification %d", position)
        return MalformedNotification(
            position, f"value[{position}] could not be read: {exc!r}"[:1000], item
        )


def call_keys(notifications: Sequence[Notification]) -> list[str]:
    """Distinct call keys in first-seen order."""
    return list(dict.fromkeys(n.call_key for n in notifications))


# A body from this size on is decoded after a young collection (``peek_batch``):
# a 1,000-person roster's 317 KB decode into some 7,000 containers.
YOUNG_FIRST_BYTES = 64 * 1024


@dataclass(frozen=True, eq=False)
class PeekedBatch:
    """What ``peek_batch`` read of a webhook body before it was verified."""

    # The call keys it names (``batch_call_keys``), None where not told.
    keys: frozenset[str] | None
    # The body, and its document as ``parse_notification_batch`` would decode
    # it; empty and None where it would decode it otherwise.
    body: bytes = b""
    document: Any = field(default=None, repr=False)
    # Known that parsing leaves the document as it is (``rosterbodies.plain``):
    # nothing to clean, nothing nested too deep.
    plain: bool = False


def batch_call_keys(body: bytes) -> frozenset[str] | None:
    """The call keys a webhook body names, read before it is verified or parsed,
    so that batches of one call can be applied in arrival order while batches of
    other calls go beside them; None when that cannot be told (not a UTF-8 batch,
    a notification naming no call, an id parsing would clean).

    The keys are ``parse_notification_batch``'s ``call_key`` for the same body,
    read with orjson: about half of what parsing the body costs (a 1,000-person
    roster, ~1 MB: 15-60 ms against 100 ms on a loaded two-core machine). A
    forged body is refused once verified; its keys only made batches of the
    calls it named wait the moment it took to refuse it.
    """
    return peek_batch(body).keys


def peek_batch(body: bytes) -> PeekedBatch:
    """``batch_call_keys``, with the decoded document kept where parsing would
    decode the body to the same (``wire_json.read_by_orjson``): the webhook
    hands it to ``parse_notification_batch`` once the body is verified, so a
    large roster's body is decoded once, not twice (on a 317 KB body, the
    second decoding and freeing cost as much CPU as the rest of the parse).

    A large roster's body that repeats a kept one but for some entries is
    decoded only there (``rosterbodies``); one that does not is decoded
    whole and kept for the next."""
    document = rosterbodies.decode(body)
    if document is not None:
        return PeekedBatch(_call_keys(document), body, document, plain=True)
    if len(body) >= YOUNG_FIRST_BYTES:
        # The document lives until its request ends, allocations of the whole
        # request beside it: a young collection then would walk its thousands
        # of containers and move them on to the older generations, whose
        # collections walk them again (``callbot/runtime/collector.py``). The
        # young generation collected now, the request has its whole threshold.
        gc.collect(0)
    try:
        document = orjson.loads(body)
    except Exception:
        return PeekedBatch(None)
    keys = _call_keys(document)
    if not wire_json.read_by_orjson(body):
        return PeekedBatch(keys)
    return PeekedBatch(keys, body, document, plain=rosterbodies.keep(body, document))


def _call_keys(document: Any) -> frozenset[str] | None:
    try:
        items = document["value"]
        if not isinstance(items, list):
            return None
        keys: set[str] = set()
        for item in items:
            url = item.get("resourceUrl") or item.get("resource")
            if "\x00" in url:  # parsing makes it U+FFFD
                return None
            keys.add(normalise_id(classify(url)[1]))
    except Exception:
        return None
    return frozenset(keys)
