"""Content-Security-Policy: every page carries a strict policy, and no page needs
inline script, inline style, an event-handler attribute or a data: URL to work."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django.test import Client

import pytest

from callbot.calls.models import Call
from tests.factories import CallFactory, MeetingFactory

pytestmark = pytest.mark.django_db


def policy(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.wsgi_request.path} has no Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


class InlineFinder(HTMLParser):
    """Everything in a page a strict policy would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        # A json_script block is data, never run; the policy lets it be.
        is_data = values.get("type") == "application/json"
        if tag == "script" and not values.get("src") and not is_data:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if name == "style":
                self.found.append(f"<{tag} style=...>")
            if name in {"href", "src", "action"} and (value or "").startswith(
                ("data:", "javascript:")
            ):
                self.found.append(f"<{tag} {name}={value!r}>")


def pages(alice: Any) -> dict[str, Any]:
    call: Call = CallFactory()
    meeting = MeetingFactory()
    signed_in = Client()
    signed_in.force_login(alice)
    return {
        "sign-in": Client().get("/accounts/login/"),
        "board": signed_in.get("/"),
        "call": signed_in.get(f"/calls/{call.pk}/"),
        "meetings": signed_in.get("/meetings/"),
        "meeting": signed_in.get(f"/meetings/{meeting.pk}/"),
        "settings": signed_in.get("/settings/"),
        "admin": signed_in.get("/admin/"),
        "not found": signed_in.get("/calls/999999/"),
        "health": Client().get("/healthz"),
    }


def test_every_page_carries_a_strict_policy(alice: Any) -> None:
    for name, response in pages(alice).items():
        directives = policy(response)
        assert directives["default-src"] == ["'self'"], name
        assert directives["script-src"] == ["'self'"], name
        assert directives["style-src"] == ["'self'"], name
        assert directives["connect-src"] == ["'self'"], name
        assert directives["frame-ancestors"] == ["'none'"], name
        assert directives["object-src"] == ["'none'"], name
        assert directives["base-uri"] == ["'none'"], name
        assert directives["form-action"] == ["'self'"], name


def test_no_page_holds_inline_script_style_or_handlers(alice: Any) -> None:
    for name, response in pages(alice).items():
        if "html" not in response.headers.get("Content-Type", ""):
            continue
        finder = InlineFinder()
        finder.feed(response.content.decode())
        assert finder.found == [], name


def test_admin_lists_and_forms_hold_no_inline_script_or_handlers(alice: Any) -> None:
    from django.contrib import admin

    client = Client()
    client.force_login(alice)
    for model in admin.site._registry:
        meta = model._meta
        for url in (
            f"/admin/{meta.app_label}/{meta.model_name}/",
            f"/admin/{meta.app_label}/{meta.model_name}/add/",
        ):
            response = client.get(url)
            if response.status_code != 200:
                continue
            assert policy(response)["script-src"] == ["'self'"], url
            finder = InlineFinder()
            finder.feed(response.content.decode())
            assert finder.found == [], url
