"""``manage.py serve`` hands its children the environment they must share."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.test import override_settings

import pytest

from callbot.runtime.management.commands import serve


class _Child:
    """A child process that has already exited (``serve`` then stops)."""

    started: list[_Child] = []

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = env
        self.returncode = 0
        _Child.started.append(self)

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0


@override_settings(CELERY_TASK_ALWAYS_EAGER=False, USE_EMULATOR=False)
def test_the_worker_calls_graph_back_where_this_serve_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a broker, the worker is the process that answers and places calls, so
    the callback URI it gives Graph must be this server's (it named port 8000
    whatever ``--port`` said, and Graph's notifications went nowhere)."""
    monkeypatch.delenv("BOT_PUBLIC_URL", raising=False)
    monkeypatch.setattr(serve.subprocess, "Popen", _Child)
    monkeypatch.setattr(serve.Command, "_wait_for", lambda *args: None)
    _Child.started = []
    call_command(
        "serve", "--port", "8391", "--no-emulator", stdout=_Sink(), stderr=_Sink()
    )
    worker = next(c for c in _Child.started if "celery" in c.args)
    web = next(c for c in _Child.started if "daphne" in c.args)
    assert worker.env is not None
    assert worker.env["BOT_PUBLIC_URL"] == "http://127.0.0.1:8391"
    assert web.env is not None
    assert web.env["BOT_PUBLIC_URL"] == worker.env["BOT_PUBLIC_URL"]


class _Sink:
    def write(self, *args: Any) -> None:
        pass

    def flush(self) -> None:
        pass
