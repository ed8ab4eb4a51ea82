"""The webhook under mutated, validly signed batches (tests/support/webhook_fuzz.py).

Properties: a valid envelope is never answered 4xx or 5xx; every notification is
stored, a duplicate or quarantined, and the rows agree; nothing is half-applied;
delivering the same body again changes nothing, and under a new message id finds
everything but full rosters already there. A small budget here;
``bench/fuzz_webhook.py`` runs the same properties for 100,000 examples.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from django.test import Client

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.jwt import TestTokenIssuer
from tests.support.webhook import counts, post
from tests.support.webhook_fuzz import (
    FuzzBatch,
    batches,
    broken_invariants,
    ledger,
    redelivery_problems,
)

pytestmark = pytest.mark.django_db


def deliver(client: Client, batch: FuzzBatch, bearer: str) -> tuple[int, Any]:
    response = post(
        client, batch.body, bearer, X_Microsoft_Skype_Message_ID=batch.message_id
    )
    answer = json.loads(response.content)
    return response.status_code, counts(
        answer
    ) if response.status_code == 202 else answer


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    # One database transaction for the whole run: examples meet the calls earlier
    # examples made, as batches do in production.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=batches(), again=st.sampled_from(["no", "same id", "new id"]))
def test_mutated_signed_batches_are_acknowledged_and_kept_whole(
    webhook: Client, token_issuer: TestTokenIssuer, batch: FuzzBatch, again: str
) -> None:
    bearer = token_issuer.bearer()
    before = ledger()
    status, answer = deliver(webhook, batch, bearer)
    after = ledger()
    assert broken_invariants(batch, status, answer, before, after) == []

    if again == "same id":
        status, answer = deliver(webhook, batch, bearer)
        assert (status, answer) == (
            202,
            {"stored": 0, "duplicates": batch.size, "quarantined": 0},
        )
        assert ledger() == after
    elif again == "new id":
        renamed = replace(batch, message_id=f"{batch.message_id}-again")
        status, answer = deliver(webhook, renamed, bearer)
        assert redelivery_problems(renamed, status, answer) == []
