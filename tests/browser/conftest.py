"""Browser fixtures: Callbot under daphne in its own process, the emulator beside it,
and headless Chromium (Debian's ``chromium``) driven by Playwright.

The server has its own memory (channel layer, caches), so tests act on it only
over HTTP: through the page, or through the emulator playing Microsoft and people.
Its database is a file SQLite in a temporary directory, or a fresh PostgreSQL
database when ``DATABASE_URL`` is set. Without chromium the tests skip, except in CI
where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.support.emulator import (
    RunningEmulator,
    free_port,
    start_emulator,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "var" / "test-artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORDS = {
    "alice": "alice-browser-pw",
    "bob": "bob-browser-pw",
    "carol": "carol-browser-pw",
    "root": "root-browser-pw",  # a superuser, for the Django admin's own pages
}
ROLES = {"alice": "admin", "bob": "supervisor", "carol": "auditor"}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        reason = f"browser: {CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "browser: playwright is not installed (make install-dev)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def _own_postgres(base_url: str) -> tuple[str, str]:
    """A fresh database beside the one ``DATABASE_URL`` names; (url, name)."""
    import psycopg

    parts = urlsplit(base_url)
    name = f"callbot_browser_{os.getpid()}"
    with psycopg.connect(_maintenance(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _drop_postgres(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_maintenance(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _maintenance(url: str) -> str:
    """The server's ``postgres`` database: the one named in the URL may not exist
    (pytest-django only ever creates ``test_<name>``)."""
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


@dataclass
class CallbotServer:
    """Callbot under daphne in a child process; ``restart`` keeps its database."""

    url: str
    port: int
    env: dict[str, str]
    log: Path
    app: str = "callbot.asgi:application"
    process: subprocess.Popen[bytes] | None = field(default=None)

    def manage(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin.encode(),
            capture_output=True,
            timeout=120,
            check=True,
        )
        return done.stdout.decode()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    self.app,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, timeout=30, interval=0.1)

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"daphne exited; see {self.log}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator(tmp_path_factory.mktemp("browser-emulator"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server(
    chromium_path: str,
    emulator: RunningEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CallbotServer]:
    var = tmp_path_factory.mktemp("browser-callbot")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GRAPH_", "DJANGO_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="callbot.settings",
        CALLBOT_VAR_DIR=str(var),
        PORT=str(port),
        BOT_PUBLIC_URL=url,
        GRAPH_BASE_URL=f"{emulator.url}/v1.0",
        GRAPH_AUTHORITY=emulator.authority,
        GRAPH_CA_BUNDLE=str(emulator.ca_path),
        GRAPH_NOTIFICATION_OPENID_URL=f"{emulator.url}/v1/.well-known/OpenIdConfiguration",
        EMULATOR_URL=emulator.url,
        # One process: the server performs its own actions (no worker to start).
        CELERY_TASK_ALWAYS_EAGER="true",
        LOG_LEVEL="WARNING",
    )
    database = ""
    base_database_url = os.environ.get("DATABASE_URL", "")
    if base_database_url:
        env["DATABASE_URL"], database = _own_postgres(base_database_url)
    running = CallbotServer(url=url, port=port, env=env, log=var / "daphne.log")
    running.manage("migrate", "--noinput")
    # As `make run` does: the demo policy answers the meeting invites below.
    running.manage("demo_ivr")
    for name, role in ROLES.items():
        running.manage(
            "create_user",
            name,
            "--role",
            role,
            "--password-stdin",
            stdin=PASSWORDS[name],
        )
    running.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('root', password='{PASSWORDS['root']}')",
    )
    running.start()
    emulator.reset(f"{url}/api/calling/callback")
    yield running
    running.stop()
    if database:
        _drop_postgres(base_database_url, database)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    # Per module, not per session: sync Playwright keeps an event loop marked
    # running in the main thread until it stops, and tests collected after the
    # browser tests (asyncio.run, async_to_sync) must not find one.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def open_page(browser: Any, server: CallbotServer) -> Iterator[Any]:
    """``open_page(user)``: a fresh browser context signed in as that user."""
    contexts: list[Any] = []

    def sign_in(username: str, *, color_scheme: str = "light") -> Any:
        context = browser.new_context(
            viewport={"width": 1440, "height": 900}, color_scheme=color_scheme
        )
        contexts.append(context)
        context.csp_violations = watch_policy(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto(f"{server.url}/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORDS[username])
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-live=connected]")
        return page

    yield sign_in
    for context in contexts:
        violations = context.csp_violations
        context.close()
        assert violations == [], "Content-Security-Policy violations"


# Reports each Content-Security-Policy violation to the console, where Playwright
# hears it; Chromium's own "Refused to ..." console errors are caught too.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def watch_policy(context: Any) -> list[str]:
    """The Content-Security-Policy violations of every page in ``context``, as
    they happen."""
    violations: list[str] = []
    context.add_init_script(_REPORT_VIOLATIONS)

    def heard(message: Any) -> None:
        text = message.text
        if text.startswith("CSP violation") or "Content Security Policy" in text:
            violations.append(f"{message.page.url if message.page else '?'}: {text}")

    context.on("console", heard)
    return violations


@dataclass
class LiveMeeting:
    """A meeting in the emulator, the bot's call in it, and who has joined."""

    id: str
    subject: str
    call_id: str
    people: dict[str, str]


@pytest.fixture
def start_meeting(emulator: RunningEmulator, server: CallbotServer) -> Any:
    """``start_meeting(subject, names)``: people join a meeting the bot is invited
    to (Callbot answers by the demo call policy ``demo_ivr`` installed)."""
    emulator.reset(f"{server.url}/api/calling/callback")

    def start(subject: str, names: list[str]) -> LiveMeeting:
        created = emulator.control("POST", "/meetings", {"subject": subject})
        call_id = emulator.control("POST", f"/meetings/{created['id']}/invite-bot")[
            "callId"
        ]
        wait_until(
            lambda: (
                emulator.control("GET", f"/calls/{call_id}")["state"] == "established"
            ),
            timeout=15,
        )
        people = {
            name: emulator.control(
                "POST",
                f"/meetings/{created['id']}/participants",
                {"user": {"displayName": name}},
            )["participantId"]
            for name in names
        }
        return LiveMeeting(created["id"], subject, call_id, people)

    return start


# Runs in the server's environment (its database, its media directory): a caller's
# recorded answer as the recording task keeps it, two seconds of a 440 Hz tone.
_KEEP_RECORDING = """
import io, math, struct, wave
from django.utils import timezone
from callbot.calls.models import Action, Call
from callbot.calls.upkeep import store_recording
buffer = io.BytesIO()
with wave.open(buffer, "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(8000)
    out.writeframes(b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / 8000)))
        for n in range(8000 * 2)
    ))
call = Call.objects.get(pk={call_pk})
action = Action.objects.create(
    call=call, kind="record_response", status="completed", completed_at=timezone.now()
)
print(store_recording(action, buffer.getvalue()).pk)
"""


def keep_recording(server: CallbotServer, call_pk: int) -> int:
    """Store a two-second recording on the call, as the recording task would;
    returns the Recording's id."""
    # The shell prints its auto-imports first; the id is the last word.
    printed = server.manage(
        "shell", "-c", _KEEP_RECORDING.replace("{call_pk}", str(call_pk))
    )
    return int(printed.split()[-1])
