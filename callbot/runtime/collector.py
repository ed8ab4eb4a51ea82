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

It also raises the youngest generation's threshold. A large webhook batch
decodes into thousands of containers (a 1,000-person roster's body: about
7,000) that live as long as its request and are freed by reference counting
at its end. At CPython's 700, some ten young collections ran during each such
request, each looking at them and moving them on to the older generations,
whose collections walked them again: 3 ms of a roster post's CPU on average
(bench/README.md). At ``YOUNG_THRESHOLD`` they are gone before a collection
sees them; cyclic garbage waits for a few thousand more allocations.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def freeze_startup() -> int:
    """Collect once (nothing already garbage is kept), then freeze every object
    that survived and raise the young generation's threshold; how many are
    frozen in all."""
    gc.collect()
    gc.freeze()
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), older, oldest)
    return gc.get_freeze_count()
