"""The Celery app. Configured from Django settings (``CELERY_*``).

On the embedded default the broker is ``memory://`` and tasks run eagerly in the
calling process; with ``REDIS_URL`` set, a worker (``celery -A callbot worker``)
performs them.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")

app = Celery("callbot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _import_task_modules(sender: Celery, **kwargs: object) -> None:
    # The domain sends tasks by name (``callbot.calls.enqueue``) and imports no task
    # module; import them all when the app is finalized, in every process, so a
    # name is always registered (the worker would otherwise be the only one).
    sender.loader.import_default_modules()


@worker_ready.connect
def _reconcile_live_calls_at_start(**kwargs: object) -> None:
    # Calls may have ended while no worker listened (a restart, an outage): check
    # every live call with Graph now rather than when it has been silent for long.
    app.tasks["callbot.calls.reconcile_silent_calls"].apply_async(
        kwargs={"silence_seconds": 0}
    )
