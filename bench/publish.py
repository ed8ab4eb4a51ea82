"""Publishing a live delta from a worker's thread: one event loop per publish
(``async_to_sync``, the baseline) against the thread's own loop (``pushloop.run``).

Both publish the same message to a group, from a plain thread as a Celery worker
does, through the configured channel layer (channels_redis with REDIS_URL set,
the in-process layer otherwise), alternating in rounds so load from elsewhere
falls on both alike. Prints CPU and wall time per publish and the ratio.

    .venv/bin/python bench/publish.py [--publishes 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")

import django

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402

from callbot.calls import pushloop  # noqa: E402

MESSAGE = {"type": "calls.delta", "call": {"id": 1, "version": 2, "state": "x"}}


def measure(publish: Callable[[], None], count: int) -> tuple[float, float]:
    """CPU (whole process: the per-publish threads count) and wall ms per publish,
    from a fresh thread."""
    out: list[float] = []

    def work() -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(count):
            publish()
        out.extend(
            [
                (time.process_time() - cpu) * 1000 / count,
                (time.perf_counter() - wall) * 1000 / count,
            ]
        )

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--publishes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    layer = get_channel_layer()
    if layer is None:
        raise SystemExit("no channel layer configured")

    def per_publish_loop() -> None:
        async_to_sync(layer.group_send)("bench.publish", MESSAGE)

    def thread_loop() -> None:
        pushloop.run(layer.group_send, "bench.publish", MESSAGE)

    results: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
    measure(thread_loop, 10)  # connect, import
    for _ in range(args.rounds):
        results["old"].append(measure(per_publish_loop, args.publishes))
        results["new"].append(measure(thread_loop, args.publishes))
    print(
        f"publish from a worker thread, {type(layer).__name__}, "
        f"{args.rounds} rounds of {args.publishes}"
    )
    for name, label in (
        ("old", "async_to_sync (loop per publish)"),
        ("new", "pushloop.run (loop per thread)"),
    ):
        cpu = statistics.median(r[0] for r in results[name])
        wall = statistics.median(r[1] for r in results[name])
        print(f"{label:36} CPU {cpu:6.3f} ms  wall {wall:6.3f} ms per publish")
    old_cpu = statistics.median(r[0] for r in results["old"])
    new_cpu = statistics.median(r[0] for r in results["new"])
    print(f"CPU ratio loop-per-thread / loop-per-publish: x{new_cpu / old_cpu:.2f}")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
