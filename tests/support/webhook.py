"""Posting notification batches to the webhook with Django's test client."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

URL = "/api/calling/callback"


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
