"""Posting notification batches to the webhook with Django's test client."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

URL = "/api/calling/callback"

# The inbox drains the deferred test mode ran (WEBHOOK_APPLY deferred,
# tests/conftest.py), the last one last.
drains: list[Any] = []


def post(client: Client, body: Any, auth: str | None, **headers: str) -> Any:
    """POST ``body`` (a dict is sent as JSON; str and bytes as they are) with the
    ``Authorization`` value ``auth`` and extra headers given by name
    (``X_Microsoft_Skype_Message_ID="m1"``)."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    extra = {"HTTP_AUTHORIZATION": auth} if auth is not None else {}
    for name, value in headers.items():
        extra["HTTP_" + name.upper().replace("-", "_")] = value
    return client.post(URL, data=data, content_type="application/json", **extra)


def wait_for_inbox(timeout: float = 15.0) -> None:
    """Wait until the deferred webhook's applier has applied every stored batch
    (``WEBHOOK_APPLY = "deferred"``): a test that posts and then reads what was
    applied calls this in between. Fails after ``timeout`` seconds."""
    import time

    from callbot.calls import inbox

    deadline = time.monotonic() + timeout
    while inbox.pending():
        if time.monotonic() > deadline:
            raise AssertionError(f"{inbox.pending()} stored batches not applied")
        time.sleep(0.01)


def counts(answer: dict[str, Any]) -> dict[str, Any]:
    """What a 202 says became of a batch's notifications. Inline that is its
    body; deferred, the body says only how many were accepted, and the counts are
    those of the drain the test mode ran before the answer (which must account
    for every notification accepted)."""
    if "accepted" not in answer:
        return answer
    drained = drains[-1]
    result = {
        "stored": drained.stored,
        "duplicates": drained.duplicates,
        "quarantined": drained.quarantined,
    }
    assert sum(result.values()) == answer["accepted"], (answer, result)
    return result
