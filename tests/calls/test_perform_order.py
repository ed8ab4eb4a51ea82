"""Actions on one call reach Graph in the order they were asked for, and waiting
for an earlier one is not an attempt."""

from __future__ import annotations

import pytest

from callbot.calls import perform
from callbot.calls.models import Action
from tests.factories import CallFactory

pytestmark = pytest.mark.django_db


def test_an_action_behind_a_queued_one_waits_without_spending_an_attempt() -> None:
    call = CallFactory(kind="group")
    first = Action.objects.create(call=call, kind="play_prompt")
    second = Action.objects.create(call=call, kind="play_prompt")

    for _ in range(10):
        retry = perform.perform(second.pk)
        assert retry is not None
        assert retry.reason == "an earlier action is queued"

    second.refresh_from_db()
    assert (second.status, second.attempts, second.claimed_until) == (
        "queued",
        0,
        None,
    )
    first.refresh_from_db()
    assert first.attempts == 0
