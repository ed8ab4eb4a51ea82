"""Where a full roster's extra cost goes: each step's thread CPU time per post.

``bench/roster_scale.py``'s two meetings and posts (a full roster with one mute
toggled, signed, through Django's test client, sizes alternating), in one
process on the configured database, with the webhook's steps wrapped so that
each adds the CPU time its thread spends in it (nested steps include what
they call). Prints per step the median over the posts of each size and the
difference, and the collector's passes per post (a full collection is rare and
long, so its mean is printed, not its median).

    .venv/bin/python bench/roster_steps.py [--posts 40] [--small 10] [--large 1000]
    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... \\
        .venv/bin/python bench/roster_steps.py
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import importlib
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import roster_scale
from bench.ingest import Keys, serve_jwks

# (module, function or Class.method, modules that imported the function by name)
STEPS = [
    # On the event loop, before the view: the calls a body names (and its
    # document, kept for the view where ``peek_batch`` is).
    ("callbot.graph.notifications", "batch_call_keys", ["callbot.calls.views"]),
    ("callbot.graph.notifications", "peek_batch", ["callbot.calls.views"]),
    ("callbot.calls.views", "_callback", []),
    (
        "callbot.graph.notifications",
        "parse_notification_batch",
        ["callbot.calls.views"],
    ),
    ("callbot.calls.ingest", "apply_notifications", ["callbot.calls.views"]),
    ("callbot.calls.ingest", "Delivery.entries", []),
    ("callbot.calls.ingest", "_apply_batch", []),
    ("callbot.calls.workset", "lock_calls", ["callbot.calls.ingest"]),
    ("callbot.calls.rosters", "load_rosters", ["callbot.calls.ingest"]),
    ("callbot.graph.notifications", "entry_digests", []),
    ("callbot.graph.entrydigests", "digest_entries", []),
    ("callbot.calls.rosters", "_unchanged", []),
    ("callbot.calls.storedrows", "read_rows", ["callbot.calls.callwork"]),
    ("callbot.calls.rosters", "unreadable_entry", ["callbot.calls.ingest"]),
    ("callbot.calls.ingest", "_apply", []),
    ("django.db.models.query", "QuerySet.bulk_create", []),
    ("callbot.calls.workset", "save_work", ["callbot.calls.ingest"]),
    ("callbot.calls.board", "roster_counts", []),
    ("django.db.backends.base.base", "BaseDatabaseWrapper.commit", []),
]

spent: dict[str, float] = collections.defaultdict(float)


def wrap_steps() -> list[str]:
    """Wrap every step this tree has; their labels, in order."""
    labels = []
    for module_name, attr, importers in STEPS:
        owner: Any = importlib.import_module(module_name)
        name = attr
        if "." in attr:
            class_name, name = attr.split(".")
            owner = getattr(owner, class_name)
        function = getattr(owner, name, None)
        if function is None:
            continue
        wrapped = _timed(function, attr)
        setattr(owner, name, wrapped)
        for importer in importers:
            module = importlib.import_module(importer)
            if getattr(module, name, None) is function:
                setattr(module, name, wrapped)
        labels.append(attr)
    return labels


def _timed(function: Any, label: str) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    return timed


def watch_collector() -> None:
    started: dict[str, float] = {}

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started["at"] = time.thread_time()
        else:
            elapsed = time.thread_time() - started.get("at", time.thread_time())
            spent[f"gc{info['generation']}"] += elapsed

    gc.callbacks.append(callback)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=1000)
    args = parser.parse_args()

    keys = Keys()
    jwks_server, openid_url = serve_jwks(keys)
    roster_scale.setup(openid_url)
    from callbot.runtime.collector import freeze_startup

    freeze_startup()
    labels = wrap_steps()
    watch_collector()
    webhook = roster_scale.Webhook(keys)
    sizes = {"small": args.small, "large": args.large}
    bodies = {}
    for name, people in sizes.items():
        call = str(uuid.uuid4())
        webhook.post(roster_scale.call_body(call))
        webhook.post(roster_scale.roster_body(call, people, muted=None))
        bodies[name] = [
            roster_scale.roster_body(call, people, muted=1),
            roster_scale.roster_body(call, people, muted=None),
        ]
        for i in range(4):  # warm
            webhook.post(bodies[name][i % 2])
    taken: dict[str, dict[str, list[float]]] = {
        name: collections.defaultdict(list) for name in sizes
    }
    for i in range(args.posts):
        for name in list(sizes) if i % 2 == 0 else list(reversed(sizes)):
            spent.clear()
            webhook.post(bodies[name][i % 2])
            taken[name]["process CPU"].append(webhook.cpu[-1] / 1000)
            for label, seconds in spent.items():
                taken[name][label].append(seconds)
    jwks_server.shutdown()

    print(f"{args.posts} posts per size, load average {roster_scale.load()}")
    print(
        f"{'thread CPU per post, p50 (ms)':>40}{args.small:>9}{args.large:>9}{'diff':>9}"
    )
    for label in ["process CPU", *labels]:
        small = statistics.median(taken["small"][label] or [0]) * 1000
        large = statistics.median(taken["large"][label] or [0]) * 1000
        print(f"{label:>40}{small:>9.2f}{large:>9.2f}{large - small:>9.2f}")
    for generation in range(3):
        label = f"gc{generation}"
        means = {name: sum(taken[name][label]) * 1000 / args.posts for name in sizes}
        print(
            f"{'collector generation ' + str(generation) + ', mean':>40}"
            f"{means['small']:>9.2f}{means['large']:>9.2f}"
            f"{means['large'] - means['small']:>9.2f}"
        )


if __name__ == "__main__":
    main()
