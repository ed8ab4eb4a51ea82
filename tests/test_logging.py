"""Log lines about a call carry its id, Graph's client-request-id and the user:
JSON lines in production, readable lines on the embedded default."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

import pytest

from callbot.calls.ingest import apply_notifications
from callbot.calls.models import Call
from callbot.calls.perform import PERFORMERS, perform
from callbot.graph.notifications import parse_notification_batch
from callbot.observability import logcontext
from tests.conftest import load_fixture
from tests.factories import ActionFactory, CallFactory

# Nothing listens there: the SDK only sends when an error is reported.
SENTRY_DSN = "http://public@127.0.0.1:9/1"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the root logger writes through Callbot's console handler, as JSON."""
    config = json.loads(json.dumps(django_settings.LOGGING))
    config["handlers"]["console"]["formatter"] = "json"
    stream = io.StringIO()
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    config["handlers"]["console"]["stream"] = "ext://sys.stderr"
    logging.config.dictConfig(config)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logcontext.clear()
    yield stream
    logcontext.clear()
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_context(lines: io.StringIO) -> None:
    logcontext.bind(call_id=7, client_request_id="crid-1", user="bob")
    logging.getLogger("callbot.test").warning("hello %s", "there")
    logcontext.clear()
    logging.getLogger("callbot.test").warning("no context", extra={"call_id": 9})

    first, second = records(lines)
    assert first["message"] == "hello there"
    assert first["level"] == "WARNING"
    assert first["logger"] == "callbot.test"
    assert (first["call_id"], first["client_request_id"], first["user"]) == (
        "7",
        "crid-1",
        "bob",
    )
    assert "time" in first
    assert second["call_id"] == 9
    assert second["user"] is None


def test_readable_lines_show_the_context_in_brackets() -> None:
    formatter = logcontext.ReadableFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "joined", None, None)
    logcontext.bind(call_id=3, user="ana")
    logcontext.ContextFilter().filter(record)
    logcontext.clear()
    assert formatter.format(record) == "INFO joined [call_id=3 user=ana]"
    bare = logging.LogRecord("x", logging.INFO, __file__, 1, "idle", None, None)
    logcontext.ContextFilter().filter(bare)
    assert formatter.format(bare) == "INFO idle"


@login_required
def _call_view(request: HttpRequest, call_id: int) -> HttpResponse:
    logging.getLogger("dashboard.test").info("page read")
    return HttpResponse("ok")


def _plain_view(request: HttpRequest) -> HttpResponse:
    logging.getLogger("dashboard.test").info("anonymous read")
    return HttpResponse("ok")


def _broken_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("broken on purpose")


urlpatterns = [
    path("calls/<int:call_id>/logged", _call_view),
    path("plain", _plain_view),
    path("broken", _broken_view),
]


@pytest.mark.django_db
@pytest.mark.urls("tests.test_logging")
def test_a_request_about_a_call_logs_its_call_and_the_signed_in_user(
    lines: io.StringIO, alice: Any
) -> None:
    client = Client()
    client.force_login(alice)
    assert client.get("/calls/42/logged").status_code == 200
    assert Client().get("/plain").status_code == 200

    read, anonymous = (
        r for r in records(lines) if r["message"] in {"page read", "anonymous read"}
    )
    assert (read["call_id"], read["user"]) == ("42", "alice")
    # The next request starts empty, and a user never looked up is not logged.
    assert (anonymous["call_id"], anonymous["user"]) == (None, None)


@pytest.mark.django_db
def test_a_page_refused_to_a_role_is_one_line_without_a_traceback(
    lines: io.StringIO, carol: Any
) -> None:
    client = Client()
    client.force_login(carol)  # an auditor: may not place calls
    assert client.get("/calls/new/").status_code == 403

    (refused,) = (r for r in records(lines) if r["logger"] == "django.request")
    assert refused["level"] == "WARNING"
    assert refused["message"] == "Forbidden (Permission denied): /calls/new/"
    assert "exc_info" not in refused


@pytest.mark.django_db
@pytest.mark.urls("tests.test_logging")
def test_a_server_error_keeps_its_traceback(lines: io.StringIO, alice: Any) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    assert client.get("/broken").status_code == 500

    (broken,) = (r for r in records(lines) if r["logger"] == "django.request")
    assert broken["level"] == "ERROR"
    assert "RuntimeError: broken on purpose" in broken["exc_info"]


@pytest.mark.django_db
def test_performing_an_action_logs_its_call_request_id_and_requester(
    lines: io.StringIO, bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = ActionFactory(requested_by=bob)

    def failing(client: Any, action: Any) -> None:
        logging.getLogger("callbot.calls.performers").warning("sending")
        raise ValueError("bad parameters")

    monkeypatch.setitem(PERFORMERS, action.kind, failing)
    perform(action.pk)

    sent = [r for r in records(lines) if r["message"] == "sending"]
    assert sent
    assert sent[0]["call_id"] == str(action.call_id)
    assert sent[0]["client_request_id"] == str(action.client_request_id)
    assert sent[0]["user"] == "bob"


@pytest.mark.parametrize(("dsn", "active"), [("", "False"), (SENTRY_DSN, "True")])
def test_error_reports_go_to_sentry_only_with_a_dsn(dsn: str, active: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env.update(SENTRY_DSN=dsn, DJANGO_SETTINGS_MODULE="callbot.settings")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, sentry_sdk; django.setup(); "
            "print(sentry_sdk.get_client().is_active())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == active


@pytest.mark.django_db
def test_a_line_about_a_call_names_it_by_the_id_every_other_line_uses(
    lines: io.StringIO,
) -> None:
    """``call_id`` is Callbot's id of the call (a page's URL, an action's call):
    the line saying a late state was ignored carried Graph's id under that name,
    so searching the logs for one call missed it. Graph's id has its own field."""
    for fixture in ("incoming_p2p_call.json", "call_established.json"):
        apply_notifications(parse_notification_batch(json.dumps(load_fixture(fixture))))
    late = load_fixture("call_establishing.json")
    apply_notifications(parse_notification_batch(json.dumps(late)))

    call = Call.objects.get()
    (stale,) = [
        r for r in records(lines) if r["message"].startswith("ignored stale call")
    ]
    assert str(stale["call_id"]) == str(call.pk)
    assert stale["graph_call_id"] == call.graph_id


@pytest.mark.django_db
def test_a_roster_line_about_an_ended_call_names_it_as_every_other_line(
    lines: io.StringIO,
) -> None:
    """A late roster of an ended call is ignored, and the line saying so carries
    Callbot's id as ``call_id`` and Graph's as ``graph_call_id``, as the call-state
    lines do."""
    ended = CallFactory(
        graph_id="2c1f0c00-9e8d-4c7b-a6f5-e4d3c2b1a098",
        kind="meeting",
        state="terminated",
    )
    late = load_fixture("roster_lee_muted.json")
    apply_notifications(parse_notification_batch(json.dumps(late)))

    (ignored,) = [
        r for r in records(lines) if r["message"] == "ignored roster of an ended call"
    ]
    assert str(ignored["call_id"]) == str(ended.pk)
    assert ignored["graph_call_id"] == ended.graph_id
