"""No worker consumes the queue: a supervisor's mute waits, and everyone is told.

The session's server is restarted on the Redis broker with a queue nobody
consumes (the meeting is started first, while it performs its own tasks); the
supervisor's page says the action has not been picked up, /healthz stays 200
with the worker check failing in the admin's detail, and the alert is raised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.browser.conftest import CallbotServer
from tests.support.emulator import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.needs_redis]

QUEUE = f"callbot-browser-no-worker-{os.getpid()}"


@pytest.fixture
def no_worker(server: CallbotServer) -> Iterator[CallbotServer]:
    saved = dict(server.env)
    server.stop()
    server.env.update(
        REDIS_URL=os.environ["REDIS_URL"],
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_QUEUE=QUEUE,
        SECRET_KEY=os.environ.get("SECRET_KEY", "browser-secret-key-0123456789abcdef"),
    )
    # Short enough for a test (the admin's form allows 15 s at the least).
    server.manage(
        "shell",
        "-c",
        "from callbot.calls.alertmodels import AlertSettings; "
        "AlertSettings.objects.update_or_create(pk=1, defaults={'worker_seconds': 15})",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.env.clear()
        server.env.update(saved)
        server.manage(
            "shell",
            "-c",
            "from callbot.calls.alertmodels import AlertSettings; "
            "AlertSettings.objects.filter(pk=1).delete()",
        )
        server.start()
        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(QUEUE)


def test_a_mute_no_worker_takes_says_so_and_the_admin_sees_why(
    open_page: Any, start_meeting: Any, server: CallbotServer, request: Any
) -> None:
    meeting = start_meeting("Nobody home", ["Ana Lopez", "Lee Chen"])
    page = open_page("bob")
    page.locator("#board-rows tr", has_text="Nobody home").get_by_role("link").click()
    page.wait_for_selector("body[data-live=connected]")
    ana = page.locator(
        f"#roster-rows [data-participant-id='{meeting.people['Ana Lopez']}']"
    )
    ana.and_(page.locator("[data-muted]")).wait_for()
    # The roster is in: now the server without a worker; the page reconnects and
    # takes a fresh snapshot.
    before = int(page.get_attribute("#call", "data-snapshots") or 0)
    down = request.getfixturevalue("no_worker")
    wait_until(
        lambda: int(page.get_attribute("#call", "data-snapshots") or 0) > before,
        timeout=30,
        interval=0.2,
    )
    ana.get_by_role("button", name="Mute").click()

    status = ana.locator(".row-status[data-status=untaken]")
    status.wait_for(timeout=30_000)
    assert "no worker has picked it up yet" in status.inner_text()
    assert (
        "no worker has picked it up yet"
        in page.locator("#action-feedback").inner_text()
    )
    assert ana.get_attribute("data-muted") == "false"

    assert httpx.get(f"{down.url}/healthz").json() == {"status": "ok"}
    page_of_admin = open_page("alice")
    cookies = {c["name"]: c["value"] for c in page_of_admin.context.cookies()}
    with httpx.Client(base_url=down.url, cookies=cookies) as http:
        detail = http.get("/healthz")
    assert detail.status_code == 200
    worker = detail.json()["checks"]["worker"]
    assert worker["ok"] is False, worker
    assert worker["problem"].startswith("no worker has sent a heartbeat yet (")
    assert "; action " in worker["problem"]
    page_of_admin.goto(f"{down.url}/settings/")
    assert "No worker is performing tasks" in page_of_admin.inner_text("body")
    raised = down.manage(
        "shell",
        "-c",
        "from callbot.calls.alertmodels import Alert; "
        "print(Alert.objects.filter(kind='worker_down', cleared_at=None).count())",
    )
    assert raised.split()[-1] == "1"
