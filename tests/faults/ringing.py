"""A ringing call in a fault test: a policy that rejects it, the ring, the row the
webhook stored, and the rejects that reached Graph."""

from __future__ import annotations

from typing import Any

from tests.faults.stack import Stack, manage
from tests.support.emulator import wait_until

# Graph ends a call nobody answered after about 15 s; the emulator is given more
# so that a late decision shows as late, not as a call that ended undecided.
RINGING_SECONDS = 40


def reject_every_call(stack: Stack) -> None:
    manage(
        stack.environment(),
        "shell",
        "-c",
        "from callbot.ivr.models import CallPolicy; CallPolicy.objects.create("
        "name='busy', match='default', action='reject', reject_reason='busy')",
    )


def ring(stack: Stack) -> str:
    """A caller rings the bot, for ``RINGING_SECONDS``; returns Graph's call id."""
    stack.emulator.control("PATCH", "/config", {"answerTimeout": RINGING_SECONDS})
    return str(
        stack.emulator.control(
            "POST", "/calls/incoming", {"from": {"phone": "+14255550123"}}
        )["callId"]
    )


def stored_call(stack: Stack, graph_id: str) -> dict[str, Any]:
    """The call's row (id, state), once the webhook stored it."""
    try:
        return wait_until(
            lambda: next(
                iter(
                    stack.rows(
                        "SELECT id, state FROM calls_call WHERE graph_id = %s",
                        graph_id,
                    )
                ),
                None,
            ),
            timeout=20,
        )
    except AssertionError:
        raise AssertionError(
            f"the ringing call was not stored\n{stack.logs()}"
        ) from None


def rejects(stack: Stack, graph_id: str) -> list[dict[str, Any]]:
    """The reject requests for the call that reached Graph."""
    return [
        r
        for r in stack.graph_requests()
        if r["method"] == "POST" and r["path"].endswith(f"/{graph_id}/reject")
    ]
