"""Callbot on the production shape, in processes a fault test can break.

Django reads its settings once, at import, so the test process cannot point itself at
a server that a test then stops. Instead every Callbot process here is a subprocess
(daphne for the webhook and the dashboard, Celery workers, beat) configured through
``DATABASE_URL``/``REDIS_URL`` to a throwaway PostgreSQL database and Redis
(``tests/support/servers.py``), talking to the emulator that runs in the test
process. The test acts as Microsoft (the emulator) and as a supervisor in a browser
(``Supervisor`` over HTTP, ``LiveClient`` over the websocket), and reads the
database directly with psycopg.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.support.emulator import RunningEmulator, free_port, wait_until
from tests.support.live_client import LiveClient
from tests.support.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_PATH = "/api/calling/callback"
TEMPLATE_DATABASE = "callbot_template"
SUPERVISOR = ("bob", "bob-supervisor-pw-1")

# People the emulator puts in meetings (the control API's shape).
ANA = {"user": {"id": "e5d4c3b2-a190-4f8e-b7d6-c5b4a3928170", "displayName": "Ana"}}
LEE = {"user": {"id": "b2a19087-f6e5-4d4c-b3a2-918070f6e5d4", "displayName": "Lee"}}
RAVI = {"user": {"id": "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2918", "displayName": "Ravi"}}
MEI = {"user": {"id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "displayName": "Mei"}}


def manage(env: Mapping[str, str], *args: str, stdin: str | None = None) -> str:
    """Run ``manage.py`` with ``env``; its output, raising on failure."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def base_environment(var_dir: Path) -> dict[str, str]:
    """The environment of a Callbot process, without service URLs."""
    env = {
        k: v
        for k, v in os.environ.items()
        # The test run's own service URLs and queue must not leak into the stack.
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "PYTEST_ADDOPTS"}
        and not k.startswith(("GRAPH_", "PYTEST_", "DJANGO_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "callbot.settings",
            "PYTHONPATH": str(ROOT),
            "CALLBOT_VAR_DIR": str(var_dir),
            "SECRET_KEY": "callbot-fault-tests",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def prepare_template(pg: PostgresServer, var_dir: Path) -> None:
    """Migrate a template database once and add the supervisor; tests copy it."""
    pg.execute(f"CREATE DATABASE {TEMPLATE_DATABASE}")
    env = base_environment(var_dir) | {"DATABASE_URL": pg.url(TEMPLATE_DATABASE)}
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(
        env,
        "create_user",
        SUPERVISOR[0],
        "--role",
        "supervisor",
        "--password-stdin",
        stdin=SUPERVISOR[1],
    )


@dataclass
class Process:
    """One Callbot process; its output goes to ``log``."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: the process holds its connections but does nothing."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, as when a machine dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def children(self, command: str) -> list[int]:
        """The pids of this process's children whose command line has
        ``command`` (the web process's inbox applier: ``apply_inbox``)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue  # gone meanwhile
            # The parent's pid is the second field after the parenthesised name.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and command.encode() in argv:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Stack:
    """Callbot's processes against one throwaway database and Redis."""

    pg: PostgresServer
    redis: RedisServer | None
    emulator: RunningEmulator
    database: str
    var_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    web_port: int = field(default_factory=free_port)

    # --- processes ------------------------------------------------------------------

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def webhook(self) -> str:
        return f"{self.web_url}{WEBHOOK_PATH}"

    def environment(self) -> dict[str, str]:
        emulator = self.emulator
        env = base_environment(self.var_dir)
        env.update(
            {
                "DATABASE_URL": self.pg.url(self.database),
                "GRAPH_BASE_URL": f"{emulator.url}/v1.0",
                "GRAPH_AUTHORITY": emulator.authority,
                "GRAPH_CA_BUNDLE": str(emulator.ca_path),
                "GRAPH_NOTIFICATION_OPENID_URL": (
                    f"{emulator.url}/v1/.well-known/OpenIdConfiguration"
                ),
                "BOT_PUBLIC_URL": self.web_url,
                "CELERY_QUEUE": "faults",
            }
        )
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url()
            env["CELERY_TASK_ALWAYS_EAGER"] = "false"
        env.update(self.settings)
        return env

    def _spawn(self, name: str, argv: list[str]) -> Process:
        log = self.var_dir / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env=self.environment(),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        started = Process(name=name, process=process, log=log)
        self.processes.append(started)
        return started

    def _ready(self, process: Process, ready: Callable[[], bool]) -> Process:
        def check() -> bool:
            if not process.alive:
                raise RuntimeError(
                    f"{process.name} exited:\n{process.output()[-3000:]}"
                )
            return ready()

        wait_until(check, timeout=60, interval=0.05)
        return process

    def start_web(self, *, fresh_emulator: bool = True) -> Process:
        """daphne serving the webhook, the pages and the websocket.

        The emulator is reset to deliver to it, unless ``fresh_emulator`` is False
        (a daphne started again in place of one that died: Microsoft's side keeps
        its calls and redelivers what the dead one did not acknowledge)."""
        web = self._spawn(
            "web",
            [
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.web_port),
                "-v",
                "0",
                "callbot.asgi:application",
            ],
        )
        self._ready(web, lambda: _port_open(self.web_port))
        if fresh_emulator:
            self.emulator.reset(self.webhook)
        return web

    def start_worker(self, concurrency: int = 4) -> Process:
        """A Celery worker as production runs it: a thread pool (docker/compose.yml)."""
        worker = self._spawn(
            "worker",
            [
                "-m",
                "celery",
                "-A",
                "callbot",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(concurrency),
                "--queues",
                "faults",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
        )
        return self._ready(worker, lambda: "ready." in worker.output())

    def start_beat(self) -> Process:
        beat = self._spawn(
            "beat",
            ["-m", "celery", "-A", "callbot", "beat", "--loglevel", "INFO"],
        )
        return self._ready(beat, lambda: "is starting." in beat.output())

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        parts = [
            f"--- {p.name} ({'alive' if p.alive else 'exited'}) ---\n"
            f"{p.output()[-4000:]}"
            for p in self.processes
        ]
        parts.append(f"--- postgres ---\n{self.pg.log_tail()}")
        return "\n".join(parts)

    # --- reading the database ---------------------------------------------------------

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with psycopg.connect(
            self.pg.url(self.database), autocommit=True, row_factory=dict_row
        ) as conn:
            return list(conn.execute(sql, params).fetchall())

    def inbox_rows(self) -> int:
        """Batches the webhook stored (``WEBHOOK_APPLY=deferred``) and its
        applier has not applied yet."""
        count: int = self.rows("SELECT count(*) AS n FROM calls_inboxbatch")[0]["n"]
        return count

    def wait_inbox_applied(self, timeout: float = 20) -> None:
        """Wait until the applier has applied every stored batch (deferred: the
        202 came before; inline there are none)."""
        try:
            wait_until(lambda: self.inbox_rows() == 0, timeout=timeout, interval=0.05)
        except AssertionError:
            raise AssertionError(
                f"{self.inbox_rows()} stored batches not applied within "
                f"{timeout} s\n{self.logs()}"
            ) from None

    def action(self, action_id: int) -> dict[str, Any]:
        return self.rows("SELECT * FROM calls_action WHERE id = %s", action_id)[0]

    def wait_actions(
        self, ids: list[int], status: str = "completed", timeout: float = 20
    ) -> float:
        """Wait until every action has ``status``; seconds it took."""
        started = time.monotonic()

        def done() -> bool:
            found = self.rows(
                "SELECT id, status FROM calls_action WHERE id = ANY(%s)", ids
            )
            return len(found) == len(ids) and all(r["status"] == status for r in found)

        try:
            wait_until(done, timeout=timeout, interval=0.1)
        except AssertionError:
            found = self.rows(
                "SELECT id, kind, status, attempts, error_code, result_message "
                "FROM calls_action WHERE id = ANY(%s)",
                ids,
            )
            raise AssertionError(
                f"actions not {status} within {timeout} s: {found}\n{self.logs()}"
            ) from None
        return time.monotonic() - started

    def graph_requests(self) -> list[dict[str, Any]]:
        """What reached the emulator's Graph API, oldest first."""
        requests: list[dict[str, Any]] = self.emulator.control("GET", "/requests")[
            "value"
        ]
        return requests

    # --- playing people ---------------------------------------------------------------

    def supervisor(self) -> Supervisor:
        return Supervisor(self.web_url, *SUPERVISOR)

    def meeting_with(self, people: list[dict[str, Any]]) -> dict[str, Any]:
        """A meeting on the emulator with these people in it; its coordinates."""
        meeting: dict[str, Any] = self.emulator.control(
            "POST", "/meetings", {"subject": "Sev2 bridge"}
        )
        for person in people:
            self.emulator.control(
                "POST", f"/meetings/{meeting['id']}/participants", person
            )
        return meeting

    def bot_in_meeting(
        self, supervisor: Supervisor, people: list[dict[str, Any]]
    ) -> tuple[int, dict[str, str]]:
        """The bot joins a meeting with ``people`` (asked for on the meetings page,
        performed by a worker); returns the call's id and each person's
        participant id by display name."""
        meeting = self.meeting_with(people)
        meeting_id = supervisor.save_meeting(meeting["joinWebUrl"])
        supervisor.join(meeting_id)
        names = {p["user"]["displayName"] for p in people}

        def roster() -> tuple[int, dict[str, str]] | None:
            found = self.rows(
                "SELECT c.id AS call_id, p.graph_id, p.display_name "
                "FROM calls_call c JOIN calls_participant p ON p.call_id = c.id "
                "WHERE c.meeting_id = %s AND c.state = 'established' "
                "AND p.left_at IS NULL AND NOT p.is_bot",
                meeting_id,
            )
            ids = {r["display_name"]: r["graph_id"] for r in found}
            if set(ids) != names:
                return None
            return found[0]["call_id"], ids

        try:
            result: tuple[int, dict[str, str]] = wait_until(
                roster, timeout=20, interval=0.1
            )
        except AssertionError:
            raise AssertionError(f"the bot did not join:\n{self.logs()}") from None
        return result

    def live_client(self, supervisor: Supervisor) -> LiveClient:
        client = LiveClient(
            f"ws://127.0.0.1:{self.web_port}/ws/live/",
            cookies=supervisor.cookies(),
            origin=self.web_url,
        )
        client.start()
        return client


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Supervisor:
    """A signed-in supervisor's browser, as far as HTTP goes (pages and forms)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        page = self.http.get("/accounts/login/")
        page.raise_for_status()
        answer = self.http.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": _form_token(page.text),
            },
        )
        if answer.status_code != 302:
            raise AssertionError(f"sign-in failed: {answer.status_code}")

    def cookies(self) -> dict[str, str]:
        return dict(self.http.cookies.items())

    def _post(self, path: str, data: dict[str, str]) -> httpx.Response:
        token = self.http.cookies.get("csrftoken") or ""
        return self.http.post(path, data={**data, "csrfmiddlewaretoken": token})

    def save_meeting(self, join_web_url: str) -> int:
        """Save a meeting by its join link on the meetings page; its id."""
        self.http.get("/meetings/").raise_for_status()
        answer = self._post(
            "/meetings/", {"subject": "Sev2 bridge", "join_web_url": join_web_url}
        )
        match = re.search(r"/meetings/(\d+)/", answer.headers.get("location", ""))
        if answer.status_code != 302 or match is None:
            raise AssertionError(f"saving the meeting failed: {answer.status_code}")
        return int(match.group(1))

    def join(self, meeting_id: int) -> None:
        """Press "join now"."""
        answer = self._post(f"/meetings/{meeting_id}/join", {})
        if answer.status_code != 302:
            raise AssertionError(f"join failed: {answer.status_code}")

    def close(self) -> None:
        self.http.close()


def _form_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if match is None:
        raise AssertionError("no CSRF token on the sign-in page")
    return match.group(1)
