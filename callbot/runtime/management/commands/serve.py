"""``manage.py serve``: Callbot under daphne, with the emulator beside it when no
Teams tenant is configured. This is what ``make run`` starts."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbot.runtime import inprocess


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


class Command(BaseCommand):
    help = "Serve Callbot with daphne; on the embedded default also start the emulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument(
            "--scenario",
            default="mixed",
            help="emulator scenario to play (default mixed; 'none' for no simulated calls)",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--no-emulator", action="store_true", help="do not start the emulator"
        )
        parser.add_argument(
            "--access-log", action="store_true", help="print one line per request"
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="with REDIS_URL: start neither the Celery worker nor the beat "
            "embedded in it; run both yourself (celery -A callbot worker, and one "
            "celery -A callbot beat)",
        )
        parser.add_argument(
            "--eager",
            action="store_true",
            help="run tasks inline where they are queued instead of in a worker thread",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        children: list[subprocess.Popen[bytes]] = []
        host, port = options["host"], options["port"]
        if _port_open(host, port):
            raise CommandError(
                f"{host}:{port} is already in use; set PORT to another port"
            )
        # A SIGTERM while the children start must still reach ``finally`` and stop
        # them; ``_supervise`` replaces this with a gentler handler once all run.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            if settings.USE_EMULATOR and not options["no_emulator"]:
                if importlib.util.find_spec("callbot.simulator.__main__") is None:
                    self.stderr.write(
                        "The emulator is not installed; serving without it."
                    )
                else:
                    children.append(self._start_emulator(host, port, options))
            env = dict(os.environ)
            # Graph calls back the URL the bot gives it; unless one is configured,
            # that is where this command serves.
            env["PORT"] = str(port)
            env.setdefault("BOT_PUBLIC_URL", f"http://{host}:{port}")
            if settings.CELERY_TASK_ALWAYS_EAGER:
                if not options["eager"]:
                    # No broker for a worker process to share: run Celery in
                    # daphne's process.
                    env[inprocess.ENV_FLAG] = "1"
            elif not options["no_worker"]:
                children.append(self._start_worker(env))
            children.append(
                subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-b",
                        host,
                        "-p",
                        str(port),
                        # Without --access-log, one line per webhook POST would
                        # drown what the emulator and Callbot report.
                        "-v",
                        "1" if options["access_log"] else "0",
                        "callbot.asgi:application",
                    ],
                    env=env,
                )
            )
            self._wait_for(host, port, "Callbot", children)
            self.stdout.write(
                self.style.SUCCESS(f"Callbot is up: http://{host}:{port}/")
                + f"\n  health: http://{host}:{port}/healthz"
                + f"\n  admin:  http://{host}:{port}/admin/"
            )
            self._supervise(children)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    def _start_worker(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """A Celery worker with beat embedded, for the broker in REDIS_URL, with
        the web server's environment: the worker answers and places calls, and
        the callback URI it gives Graph is ``BOT_PUBLIC_URL``."""
        self.stdout.write("Celery worker (with beat) on the Redis broker")
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "callbot",
                "worker",
                "--beat",
                "--pool",
                "threads",
                "--concurrency",
                "8",
                "--loglevel",
                "WARNING",
            ],
            env=env,
        )

    def _start_emulator(
        self, host: str, port: int, options: dict[str, Any]
    ) -> subprocess.Popen[bytes]:
        url = urlsplit(settings.EMULATOR_URL)
        emu_host, emu_port = url.hostname or "127.0.0.1", url.port or 8443
        if _port_open(emu_host, emu_port):
            raise CommandError(
                f"the emulator's port {emu_host}:{emu_port} is taken; stop what runs there "
                "or set EMULATOR_URL"
            )
        state_dir = Path(settings.GRAPH_CA_BUNDLE).parent
        command = [
            sys.executable,
            "-m",
            "callbot.simulator",
            "--host",
            emu_host,
            "--port",
            str(emu_port),
            "--state-dir",
            str(state_dir),
            "--bot-webhook",
            f"http://{host}:{port}/api/calling/callback",
            "--seed",
            str(options["seed"]),
        ]
        if options["scenario"] != "none":
            command += ["--scenario", options["scenario"]]
        child = subprocess.Popen(command)  # noqa: S603 (our own interpreter and module)
        self._wait_for(emu_host, emu_port, "the emulator", [child])
        self.stdout.write(f"Emulator (Microsoft's side) on {settings.EMULATOR_URL}")
        return child

    def _wait_for(
        self, host: str, port: int, what: str, children: list[subprocess.Popen[bytes]]
    ) -> None:
        deadline = time.monotonic() + 60
        while not _port_open(host, port):
            for child in children:
                if child.poll() is not None:
                    raise CommandError(f"{what} exited with status {child.returncode}")
            if time.monotonic() > deadline:
                raise CommandError(f"{what} did not start listening on {host}:{port}")
            time.sleep(0.2)

    def _supervise(self, children: list[subprocess.Popen[bytes]]) -> None:
        stop = False

        def on_signal(signum: int, frame: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, on_signal)
        try:
            while not stop:
                for child in children:
                    if child.poll() is not None:
                        self.stderr.write(
                            f"a child process exited ({child.returncode}); stopping"
                        )
                        return
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
