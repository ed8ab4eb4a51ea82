"""The garbage collector after start-up.

What a process builds while it starts (modules, classes, Django's apps, models
and URL resolvers, the Celery app and its tasks) lives as long as the process,
some 160,000 objects. Left in the collector's generations, every full
collection walks them all again: measured in-process, a full collection took
170 to 370 ms during history searches and two of them were 556 ms of 1,805 ms over
twenty 1,000-person roster batches (bench/README.md), the largest tail of both.
``gc.freeze()`` moves what exists now into a permanent generation that
collections skip (a full collection then took 9 ms); whatever is made later is
collected as before. The web process (``callbot.asgi``) and Celery's worker
processes call ``freeze_startup`` once their application is loaded.
"""

from __future__ import annotations

import gc


def freeze_startup() -> int:
    """Collect once (nothing already garbage is kept), then freeze every object
    that survived; how many are frozen in all."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
