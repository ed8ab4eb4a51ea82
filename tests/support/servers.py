"""Throwaway PostgreSQL and Redis servers owned by a test, on free ports.

Fault tests stop and restart these, so they are never the machine's shared servers:
``PostgresServer`` is a cluster made by ``initdb`` in a temporary directory (trust
auth, Unix socket in that directory, listening on 127.0.0.1 only), ``RedisServer`` a
``redis-server`` with no persistence. Both have ``start``/``stop``/``restart`` and a
``destroy`` that is safe to call twice; every server made here is also destroyed when
the interpreter exits, in case a fixture's teardown never ran.

PostgreSQL refuses to run as root, so under root the cluster belongs to the
``postgres`` OS user and its commands run through ``runuser``.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import redis

from tests.support.emulator import free_port, wait_until

_alive: list[Any] = []


@atexit.register
def _destroy_leftovers() -> None:
    for server in list(_alive):
        with contextlib.suppress(Exception):
            server.destroy()


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory (Debian layout or PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def missing_binaries() -> str:
    """Why the fault tests cannot run here, or "" if they can."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("PostgreSQL (initdb, pg_ctl)")
    if redis_server_binary() is None:
        missing.append("redis-server")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("a 'postgres' OS user to run initdb as (running as root)")
    return ", ".join(missing)


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL binaries not found")
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="callbot-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            # runuser lives in sbin, which a minimal PATH may leave out.
            runuser = shutil.which("runuser") or shutil.which(
                "runuser", path="/usr/sbin:/sbin"
            )
            if runuser is None:
                raise RuntimeError("runuser not found (util-linux)")
            self._as = [runuser, "-u", "postgres", "--"]
        _alive.append(self)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [*self._as, str(self.bin_dir / program), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{self.log_tail()}"
            )

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        if self.running:
            return
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # Throwaway data: durability only costs time here.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster: ``fast`` ends every session (a planned restart),
        ``immediate`` is a crash."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement (autocommit); the rows it returned, if any."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        if self in _alive:
            _alive.remove(self)


class RedisServer:
    """A ``redis-server`` process without persistence: a restart empties it."""

    def __init__(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server not found")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="callbot-redis-"))
        self.log = self.root / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        _alive.append(self)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.root),
                "--logfile",
                str(self.log),
            ]
        )
        wait_until(self._answers, timeout=10, interval=0.02)

    def _answers(self) -> bool:
        if not self.running:
            raise RuntimeError(f"redis-server exited:\n{self.log_tail()}")
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM: Redis closes every client and exits; nothing is saved."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        # The port is ours until someone else binds it; take it back at once.
        deadline = time.monotonic() + 5
        while True:
            try:
                self.start()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self in _alive:
            _alive.remove(self)
