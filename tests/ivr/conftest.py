"""Fixtures of the IVR tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from callbot.ivr import tasks


@contextlib.contextmanager
def tasks_eager(eager: bool) -> Iterator[None]:
    """Celery's ``task_always_eager`` set to ``eager``, then as it was: the
    override is removed again, so a later test's ``settings`` still decide."""
    conf = tasks.handle_call_activity.app.conf
    overridden = "task_always_eager" in conf.changes
    before = conf.changes.get("task_always_eager")
    conf.task_always_eager = eager
    try:
        yield
    finally:
        if overridden:
            conf.task_always_eager = before
        else:
            del conf["task_always_eager"]


@pytest.fixture
def broker_refuses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A worker setup (tasks not eager) whose broker refuses every message, as
    Celery reports it once its publish retries ran out."""
    refused: list[dict[str, Any]] = []

    def delay(activity: dict[str, Any]) -> None:
        refused.append(activity)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(tasks.handle_call_activity, "delay", delay)
    with tasks_eager(False):
        yield refused
