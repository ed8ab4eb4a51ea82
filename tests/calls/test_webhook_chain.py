"""The Graph webhook runs through its own short middleware chain under ASGI
(callbot/asgi.py, ``WEBHOOK_MIDDLEWARE``): it keeps the security headers and its
answers, and every other path keeps Django's full chain."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from typing import Any

from django.core.signals import request_started
from django.test import Client

import orjson
import pytest
from channels.layers import get_channel_layer

from callbot import asgi
from callbot.calls import inboxapplier, live, views
from callbot.calls.models import Call, CallEvent, InboxBatch, Participant
from callbot.graph import rosterbodies, wire_json
from tests.calls.test_participant_changes import LEE, crowd
from tests.calls.test_roster_digests import entry, without
from tests.conftest import load_fixture
from tests.support.asgi import asgi_request
from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import URL

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # the handler closes old connections
def test_the_webhook_answers_through_its_short_chain_with_security_headers(
    webhook: Client, token_issuer: TestTokenIssuer
) -> None:
    body = json.dumps(load_fixture("incoming_p2p_call.json")).encode()

    answer = asgi_request("POST", URL, body, auth=token_issuer.bearer())

    assert answer.status == 202
    assert CallEvent.objects.count() == 1
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "referrer-policy" in headers
    # The page middleware did not run for it.
    assert "x-frame-options" not in headers
    assert "vary" not in headers  # no session looked at


@pytest.mark.django_db(transaction=True)
def test_other_paths_keep_the_full_chain() -> None:
    answer = asgi_request("GET", "/healthz")

    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def test_the_webhook_chain_is_the_configured_one() -> None:
    handler = asgi.webhook_asgi_app
    names = []
    layer: Any = handler._middleware_chain
    while True:
        layer = getattr(layer, "__wrapped__", layer)  # convert_exception_to_response
        if not hasattr(layer, "get_response"):
            break
        names.append(f"{type(layer).__module__}.{type(layer).__name__}")
        layer = layer.get_response
    assert names == [
        "callbot.runtime.webhookchain.InlineSecurityMiddleware",
        "callbot.observability.logcontext.LogContextMiddleware",
    ]


@pytest.mark.django_db(transaction=True)
def test_deferred_webhook_requests_share_one_thread_and_are_not_ordered(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    ingest_thread: None,
) -> None:
    settings.WEBHOOK_APPLY = "deferred"
    monkeypatch.setattr(inboxapplier, "kick", lambda: None)

    def not_read(body: bytes) -> None:
        raise AssertionError("stored batches are ordered by their rows")

    monkeypatch.setattr(views, "peek_batch", not_read)
    started_on: list[str] = []

    def record(sender: Any, **kwargs: Any) -> None:
        started_on.append(threading.current_thread().name)

    request_started.connect(record)
    try:
        answers = [
            asgi_request(
                "POST",
                URL,
                json.dumps(load_fixture(name)).encode(),
                auth=token_issuer.bearer(),
            )
            for name in ("incoming_p2p_call.json", "call_established.json")
        ]
    finally:
        request_started.disconnect(record)

    assert [a.status for a in answers] == [202, 202]
    assert InboxBatch.objects.count() == 2
    assert answers[1].headers["x-content-type-options"] == "nosniff"
    # Django's request_started ran where the request was answered, on the
    # event loop's thread (WebhookHandler._post), not on a thread made for
    # each request nor after a hop to another.
    assert started_on == [a.thread for a in answers]


@pytest.mark.django_db(transaction=True)
def test_an_inline_batch_is_decoded_once_to_order_and_to_apply_it(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    ingest_thread: None,
) -> None:
    settings.WEBHOOK_APPLY = "inline"
    decoded: list[str] = []
    loads = wire_json.loads

    def counted(text: str) -> Any:
        decoded.append(text)
        return loads(text)

    monkeypatch.setattr(wire_json, "loads", counted)
    answers = [
        asgi_request(
            "POST",
            URL,
            json.dumps(load_fixture(name)).encode(),
            auth=token_issuer.bearer(),
        )
        for name in ("meeting_join_established.json", "roster_two_join.json")
    ]

    assert [a.status for a in answers] == [202, 202]
    assert Participant.objects.filter(left_at__isnull=True).count() == 3
    # Read once on the event loop for the calls it names (``peek_batch``),
    # then parsed from that document on the ingest thread.
    assert decoded == []


@pytest.fixture
def decoded_from_kept(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each large roster body the webhook read was decoded from the
    last one's document (``rosterbodies``)."""
    found: list[bool] = []
    decode = rosterbodies.decode

    def recording(body: bytes) -> Any:
        document = decode(body)
        if len(body) >= rosterbodies.MIN_BYTES:
            found.append(document is not None)
        return document

    monkeypatch.setattr(rosterbodies, "decode", recording)
    return found


@pytest.mark.django_db(transaction=True)
def test_a_large_roster_decoded_from_the_last_one_applies_and_pushes_each_change(
    webhook: Client,
    token_issuer: TestTokenIssuer,
    settings: Any,
    ingest_thread: None,
    decoded_from_kept: list[bool],
) -> None:
    settings.WEBHOOK_APPLY = "inline"
    bearer = token_issuer.bearer()

    def post(batch: dict[str, Any]) -> None:
        raw = json.dumps(batch).encode()
        assert len(raw) >= rosterbodies.MIN_BYTES
        assert asgi_request("POST", URL, raw, auth=bearer).status == 202

    established = json.dumps(load_fixture("meeting_join_established.json")).encode()
    assert asgi_request("POST", URL, established, auth=bearer).status == 202
    roster = crowd(300)
    post(roster)
    call = Call.objects.get()
    watcher = Watcher(call.pk)
    try:
        renamed = copy.deepcopy(roster)
        entry(renamed, LEE)["info"]["identity"]["user"]["displayName"] = "Lee C."
        post(renamed)  # the same id, only the name the board shows changed
        renamed_frames = watcher.frames()
        muted = copy.deepcopy(renamed)
        entry(muted, LEE)["isMuted"] = True
        post(muted)
        muted_frames = watcher.frames()
        newcomer = copy.deepcopy(entry(muted, LEE))
        newcomer["id"] = "5c1d6e8f-0000-4000-8000-00000000a11e"
        newcomer["info"]["identity"]["user"]["displayName"] = "Ali New"
        moved = without(muted, LEE)
        moved["value"][0]["resourceData"].insert(100, newcomer)
        post(moved)  # one leaves, one joins
        moved_frames = watcher.frames()
    finally:
        watcher.close()

    assert decoded_from_kept == [False, True, True, True]
    lee = Participant.objects.get(graph_id=LEE)
    assert (lee.display_name, lee.is_muted) == ("Lee C.", True)
    assert lee.left_at is not None
    assert Participant.objects.get(display_name="Ali New").left_at is None
    assert Participant.objects.filter(left_at__isnull=True).count() == 300 + 3
    assert "Lee C." in json.dumps(call_deltas(renamed_frames))
    assert call_deltas(muted_frames)
    assert "Ali New" in json.dumps(call_deltas(moved_frames))
    # What ingest did with the documents left the kept one as its text reads.
    for kept in rosterbodies._kept:
        assert kept.document == orjson.loads(kept.text)


def call_deltas(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [frame for frame in frames if frame["type"] == "call.delta"]


class Watcher:
    """A channel in a call's group, as a watching socket is, on a loop of its
    own (a layer's receive buffer keeps its loop)."""

    def __init__(self, call_pk: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.layer = get_channel_layer()
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.group = live.call_group(call_pk)
        self.loop.run_until_complete(self.layer.group_add(self.group, self.channel))

    def frames(self) -> list[dict[str, Any]]:
        """What was sent to the group since the last call."""

        async def drain() -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            while True:
                try:
                    got.append(
                        await asyncio.wait_for(self.layer.receive(self.channel), 0.5)
                    )
                except TimeoutError:
                    return got

        return self.loop.run_until_complete(drain())

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.group_discard(self.group, self.channel))
        self.loop.close()
