"""Fuzz the webhook: mutated, validly signed batches through the real view.

The batches and the properties are the ones of tests/calls/test_webhook_fuzz.py
(tests/support/webhook_fuzz.py), for many more examples: every batch's envelope
is valid, so every answer must be 202, every notification must be stored, a
duplicate or quarantined, and nothing may be half-applied. Each batch is posted
through Django's test client (the webhook view, its middleware, the token check
against a JWKS served over HTTP, ingest, the database). About a third are delivered
again under the same message id (that must change nothing) and a third under a
new one (everything but a full roster must be found already there).

Runs on the embedded default (SQLite in a temporary directory) unless
DATABASE_URL is set; it uses a database of its own (``<name>_fuzz``) and drops it.
Prints the answers by status, the notifications by outcome, the quarantine
reasons, the rate, and every broken property (exit status 1 if any).

    .venv/bin/python bench/fuzz_webhook.py [--examples 100000] [--seed 1]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/webhook \\
        .venv/bin/python bench/fuzz_webhook.py --examples 10000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--every", type=int, default=10_000, help="print progress every N examples"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    workdir = tempfile.TemporaryDirectory(prefix="callbot-fuzz-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callbot.settings")
    os.environ["CALLBOT_VAR_DIR"] = workdir.name
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from hypothesis import HealthCheck, Phase, given, seed
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st

    from callbot.calls.models import QuarantinedNotification
    from callbot.graph.factory import reset_notification_authenticator
    from tests.support.jwt import JwksServer, TestTokenIssuer
    from tests.support.webhook import post
    from tests.support.webhook_fuzz import (
        FuzzBatch,
        batches,
        broken_invariants,
        ledger,
        redelivery_problems,
    )

    # Every quarantined notification logs a warning; a hundred thousand of them
    # would bury the figures. The outcomes are counted from the answers instead.
    logging.disable(logging.CRITICAL)
    setup_test_environment()
    database = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        database.setdefault("TEST", {})["NAME"] = f"{database['NAME']}_fuzz"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)

    issuer = TestTokenIssuer()
    statuses: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    broken: list[str] = []
    counted = {"examples": 0, "notifications": 0, "redeliveries": 0, "renamed": 0}
    with JwksServer(issuer) as jwks:
        settings.GRAPH_NOTIFICATION_OPENID_URL = jwks.openid_url
        settings.GRAPH_CLIENT_ID = issuer.audience
        settings.GRAPH_CA_BUNDLE = ""
        reset_notification_authenticator()
        client = Client()
        bearer = issuer.bearer()

        def deliver(batch: FuzzBatch) -> tuple[int, Any]:
            response = post(
                client,
                batch.body,
                bearer,
                X_Microsoft_Skype_Message_ID=batch.message_id,
            )
            return response.status_code, json.loads(response.content)

        @hypothesis_settings(
            max_examples=args.examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(batch=batches(), again=st.integers(0, 2))
        def fuzz(batch: FuzzBatch, again: int) -> None:
            before = ledger()
            status, answer = deliver(batch)
            after = ledger()
            statuses[str(status)] += 1
            counted["examples"] += 1
            counted["notifications"] += batch.size
            if status == 202:
                for outcome in ("stored", "duplicates", "quarantined"):
                    outcomes[outcome] += answer[outcome]
            # The whole-database checks grow with the run: every 500th example.
            whole = counted["examples"] % 500 == 0
            for problem in broken_invariants(
                batch, status, answer, before, after, whole=whole
            ):
                broken.append(f"{problem}\n    body: {batch.body[:400]!r}")
            if again == 2:
                counted["redeliveries"] += 1
                status, answer = deliver(batch)
                expected = {"stored": 0, "duplicates": batch.size, "quarantined": 0}
                if (status, answer) != (202, expected) or ledger() != after:
                    broken.append(
                        f"redelivery answered {status} {answer}\n"
                        f"    body: {batch.body[:400]!r}"
                    )
            elif again == 1:
                counted["renamed"] += 1
                renamed = replace(batch, message_id=f"{batch.message_id}-again")
                status, answer = deliver(renamed)
                for problem in redelivery_problems(renamed, status, answer):
                    broken.append(f"{problem}\n    body: {batch.body[:400]!r}")
            if counted["examples"] % args.every == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"  {counted['examples']:>7} examples, "
                    f"{counted['examples'] / elapsed:6.0f}/s, "
                    f"{len(broken)} broken",
                    flush=True,
                )

        started = time.perf_counter()
        seed(args.seed)(fuzz)()
        elapsed = time.perf_counter() - started
        reasons = Counter(
            QuarantinedNotification.objects.values_list("reason", flat=True)
        )
        failed = list(
            QuarantinedNotification.objects.filter(reason="failed")
            .values_list("error", flat=True)
            .distinct()[:5]
        )
    vendor = connection.vendor
    connection.creation.destroy_test_db(database["NAME"], verbosity=0)
    workdir.cleanup()

    total = counted["notifications"]
    print(
        f"\nwebhook fuzz on {vendor}: {counted['examples']} batches "
        f"({total} notifications; delivered again: {counted['redeliveries']} under"
        f" the same message id, {counted['renamed']} under a new one) "
        f"in {elapsed:.0f} s: {counted['examples'] / elapsed:.0f} batches/s, "
        f"{total / elapsed:.0f} notifications/s"
    )
    print(
        "answers by status:   "
        + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    )
    print(
        "first deliveries:    "
        + ", ".join(
            f"{k}: {outcomes[k]} ({outcomes[k] / max(total, 1):.1%})"
            for k in ("stored", "duplicates", "quarantined")
        )
    )
    print(
        "quarantine reasons:  "
        + ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))
    )
    for error in failed:
        print(f"  failed: {error[:200]}")
    print(f"broken properties:   {len(broken)}")
    for problem in broken[:10]:
        print(f"  {problem}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
