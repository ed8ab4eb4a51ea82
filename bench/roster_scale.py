"""Full roster of a large meeting with one change, against a small one's.

Issue 13's goal for the full-roster path: a 1,000-person meeting's full roster
with one change costs the webhook at most twice what a 10-person meeting's does,
and the delta pushed for it stays under 1 KB.

In this process, on the configured database (the embedded default's SQLite under
a temporary directory, or ``DATABASE_URL`` / ``REDIS_URL``, migrated first): a
JWKS server signs the batches as in ``bench/ingest.py``; two meetings are
created by a full roster each (``--small`` and ``--large`` people, the bot
among them); then, ``--rounds`` times, each meeting gets its full roster again
with one person's mute toggled, posted signed to ``/api/calling/callback``
through Django's test client, small and large alternating (which goes first
alternates too). Per size it prints the median and p90 of the webhook's own
server time (its ``Server-Timing`` header: token check, parse, apply, commit),
the median CPU time the process spent on a post (the request's thread and the
test client; a loaded machine stretches wall time, far less CPU time),
the median time ``parse_notification_batch`` takes on the same body and the
median time bare ``orjson.loads`` does (the floor: no server reads a body in
less), the body's size, the pushed frames' sizes (``call.delta`` and
``calls.delta`` as a watching socket encodes them) and the ratio large/small of
the medians; for the large meeting, what each one-change round pushed (how
many frames, the largest, all of them together) against the < 1 KB goal, a
round that pushed nothing counting against it. As the web process does (``callbot/asgi.py``), what start-up built
is frozen out of the garbage collector's way first (``--no-freeze``: not).
The webhook applies inline (``WEBHOOK_APPLY``), on PostgreSQL too, where the
deferred default would only store the batch: what is timed is the application,
which the deferred webhook's applier pays in the same code.

    .venv/bin/python bench/roster_scale.py [--rounds 25] [--small 10] [--large 1000]
    DATABASE_URL=postgres://... REDIS_URL=redis://... SECRET_KEY=... \\
        .venv/bin/python bench/roster_scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import APP_ID, Keys, participant, serve_jwks  # noqa: E402

BOT = "f0e1d2c3-0000-4000-8000-00000000b075"


def roster_body(call: str, people: int, muted: int | None) -> bytes:
    """A full roster of ``people`` (the bot first), person ``muted`` muted."""
    bot = participant(0, muted=False)
    bot["id"] = BOT
    bot["info"] = {
        "identity": {"application": {"id": APP_ID, "displayName": "Callbot"}}
    }
    entries = [bot, *(participant(i, muted=i == muted) for i in range(1, people))]
    return json.dumps(
        {
            "value": [
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call}/participants",
                    "resourceData": entries,
                }
            ]
        }
    ).encode()


def call_body(call: str) -> bytes:
    return json.dumps(
        {
            "value": [
                {
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.call",
                        "id": call,
                        "state": "established",
                        "direction": "outgoing",
                        "myParticipantId": BOT,
                    },
                }
            ]
        }
    ).encode()


class Webhook:
    """Signed posts to the callback through Django's test client."""

    def __init__(self, keys: Keys) -> None:
        from django.test import Client

        self.client = Client(HTTP_HOST="127.0.0.1")
        self.token = keys.token()
        self.sent = 0
        self.cpu: list[float] = []

    def post(self, body: bytes) -> float:
        """Post ``body`` under a new message id; the server time in ms (the
        process's CPU time for it is added to ``cpu``)."""
        self.sent += 1
        started = time.process_time()
        response = self.client.post(
            "/api/calling/callback",
            data=body,
            content_type="application/json",
            headers={
                "Authorization": f"Bearer {self.token}",
                "X-Microsoft-Skype-Message-ID": f"roster-{self.sent}",
            },
        )
        self.cpu.append((time.process_time() - started) * 1000)
        if response.status_code != 202:
            raise SystemExit(f"{response.status_code} {response.content[:300]!r}")
        return float(response.headers["Server-Timing"].split("dur=")[1])


class Watcher:
    """A channel in a call's group and the board's, as a watching socket is."""

    def __init__(self, call_pk: int) -> None:
        import asyncio

        self.call_pk = call_pk
        from channels.layers import get_channel_layer

        from callbot.calls import live

        # One loop for all of it: a Redis layer's receive buffer keeps its loop.
        self.loop = asyncio.new_event_loop()
        self.layer = get_channel_layer()
        self.channel = self.loop.run_until_complete(self.layer.new_channel())
        self.groups = [live.call_group(call_pk), live.LIVE_CALLS_GROUP]
        for group in self.groups:
            self.loop.run_until_complete(self.layer.group_add(group, self.channel))

    def frames(self) -> list[tuple[str, int]]:
        """The frames pushed for this call since the last call: each one's
        type and encoded bytes, in the order received (the board's frames of
        other calls left out)."""
        import asyncio

        from dashboard.consumers import encode

        async def drain() -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            while True:
                try:
                    got.append(
                        await asyncio.wait_for(self.layer.receive(self.channel), 0.2)
                    )
                except TimeoutError:
                    return got

        return [
            (message["type"], len(encode(message).encode()))
            for message in self.loop.run_until_complete(drain())
            if self.call_pk
            in (message.get("call_id"), (message.get("call") or {}).get("id"))
        ]

    def close(self) -> None:
        for group in self.groups:
            self.loop.run_until_complete(self.layer.group_discard(group, self.channel))


def floor_ms(body: bytes) -> float:
    import orjson

    start = time.perf_counter()
    orjson.loads(body)
    return (time.perf_counter() - start) * 1000


def parse_ms(body: bytes, repeat: int = 3) -> float:
    from callbot.graph.notifications import parse_notification_batch

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        parse_notification_batch(body)
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def setup(openid_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    if not os.environ.get("DATABASE_URL"):
        os.environ["CALLBOT_VAR_DIR"] = tempfile.mkdtemp(prefix="callbot-roster-")
    os.environ.update(
        GRAPH_NOTIFICATION_OPENID_URL=openid_url,
        GRAPH_CLIENT_ID=APP_ID,
        GRAPH_CA_BUNDLE="",
        LOG_LEVEL="WARNING",
        # The roster's cost is its application: with PostgreSQL and Redis the
        # webhook defers that to the inbox's applier and answers after one
        # INSERT, so the webhook applies inline here, where it can be timed.
        WEBHOOK_APPLY="inline",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--no-freeze", action="store_true")
    args = parser.parse_args()

    keys = Keys()
    jwks_server, openid_url = serve_jwks(keys)
    setup(openid_url)
    from callbot.calls.models import Call

    if not args.no_freeze:
        from callbot.runtime.collector import freeze_startup

        freeze_startup()
    webhook = Webhook(keys)
    sizes = {"small": args.small, "large": args.large}
    calls = {name: str(uuid.uuid4()) for name in sizes}
    for name, people in sizes.items():
        webhook.post(call_body(calls[name]))
        webhook.post(roster_body(calls[name], people, muted=None))
    watchers = {
        name: Watcher(Call.objects.get(graph_id=calls[name]).pk) for name in sizes
    }
    server: dict[str, list[float]] = {name: [] for name in sizes}
    cpu: dict[str, list[float]] = {name: [] for name in sizes}
    parsing: dict[str, list[float]] = {name: [] for name in sizes}
    floor: dict[str, list[float]] = {name: [] for name in sizes}
    frames: dict[str, dict[str, int]] = {name: {} for name in sizes}
    # Per one-change round: every frame pushed for the change, in bytes.
    pushed: dict[str, list[list[int]]] = {name: [] for name in sizes}
    body_bytes: dict[str, int] = {}
    try:
        for name in sizes:  # warm: the first toggles are not measured
            watchers[name].frames()
            webhook.post(roster_body(calls[name], sizes[name], muted=1))
            webhook.post(roster_body(calls[name], sizes[name], muted=None))
            watchers[name].frames()
        for round_ in range(args.rounds):
            order = list(sizes) if round_ % 2 == 0 else list(reversed(sizes))
            muted = 1 if round_ % 2 == 0 else None  # one change each round
            for name in order:
                body = roster_body(calls[name], sizes[name], muted=muted)
                body_bytes[name] = len(body)
                server[name].append(webhook.post(body))
                cpu[name].append(webhook.cpu[-1])
                got = watchers[name].frames()
                pushed[name].append([size for _, size in got])
                for kind, size in got:
                    frames[name][kind] = max(size, frames[name].get(kind, 0))
                parsing[name].append(parse_ms(body, repeat=1))
                floor[name].append(floor_ms(body))
    finally:
        for watcher in watchers.values():
            watcher.close()
        jwks_server.shutdown()

    db = "PostgreSQL + Redis" if os.environ.get("DATABASE_URL") else "SQLite (WAL)"
    print(
        f"full roster, one mute toggled per batch: {args.rounds} rounds, {db}, "
        f"gc {'not ' * args.no_freeze}frozen, "
        f"load average before→after: {LOAD_BEFORE} → {load()}"
    )
    print(
        f"{'people':>8}{'body KB':>9}{'server p50 ms':>15}{'p90 ms':>9}"
        f"{'CPU p50 ms':>12}"
        f"{'parse p50 ms':>14}{'orjson p50 ms':>15}{'call.delta B':>14}"
        f"{'calls.delta B':>15}"
    )
    for name, people in sizes.items():
        print(
            f"{people:>8}{body_bytes[name] / 1024:>9.1f}"
            f"{statistics.median(server[name]):>15.2f}"
            f"{percentile(server[name], 90):>9.2f}"
            f"{statistics.median(cpu[name]):>12.2f}"
            f"{statistics.median(parsing[name]):>14.2f}"
            f"{statistics.median(floor[name]):>15.3f}"
            f"{frames[name].get('call.delta', 0):>14}"
            f"{frames[name].get('calls.delta', 0):>15}"
        )
    ratio = statistics.median(server["large"]) / statistics.median(server["small"])
    print(
        f"ratio {args.large}/{args.small} (server time p50): {ratio:.1f}x "
        f"(goal <= 2x); largest pushed frame for the {args.large}-person meeting: "
        f"{max(frames['large'].values(), default=0)} B (goal < 1024)"
    )
    largest = max((max(r, default=0) for r in pushed["large"]), default=0)
    whole = max((sum(r) for r in pushed["large"]), default=0)
    silent = sum(1 for r in pushed["large"] if not r)
    print(
        f"pushed for the {args.large}-person meeting's one change, per round: "
        f"{min(map(len, pushed['large']), default=0)}-"
        f"{max(map(len, pushed['large']), default=0)} frames, the largest "
        f"{largest} B, all of a round's frames together at most {whole} B; "
        f"{silent} rounds pushed nothing; the pushed delta < 1 KB: "
        f"{'met' if largest < 1024 and not silent else 'NOT met'}"
    )
    cpu_ratio = statistics.median(cpu["large"]) / statistics.median(cpu["small"])
    print(
        f"ratio {args.large}/{args.small} (the process's CPU time per post, p50): "
        f"{cpu_ratio:.1f}x (what a loaded machine's waits do not blur)"
    )
    added = statistics.median(server["large"]) - statistics.median(server["small"])
    bare = statistics.median(floor["large"]) - statistics.median(floor["small"])
    print(
        f"the {args.large}-person batch's server time beyond the "
        f"{args.small}-person one's: {added:.2f} ms, {added / bare:.0f}x what "
        f"bare orjson.loads adds for its body ({bare:.2f} ms)"
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


LOAD_BEFORE = load()

if __name__ == "__main__":
    main()
