from __future__ import annotations

from django.apps import AppConfig


class RuntimeConfig(AppConfig):
    """How Callbot's processes run: ``manage.py serve``, the in-process Celery worker
    of the embedded default and its channel layer. No models; the domain apps
    (``callbot.calls``, ``callbot.ivr``) never import it."""

    name = "callbot.runtime"
    label = "runtime"
    verbose_name = "Process wiring"
