"""Out-of-order call states arriving in one batch, as the platform may send them.

The emulator keeps a call's notifications in separate POSTs while one is in flight,
so its reorder fault never puts ``established`` and a late ``establishing`` in the
same batch. Graph may (contract §3.2: establishing can arrive after established,
and a batch carries several notifications); these tests send such batches to
Callbot's webhook themselves, signed by the emulator's notification key.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from callbot.calls.models import Call
from tests.e2e.conftest import Callbot

pytestmark = pytest.mark.e2e


def state_update(call_id: str, state: str, webhook: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": "updated",
        "resource": f"/app/calls/{call_id}",
        "resourceUrl": f"/communications/calls/{call_id}",
        "callbackUri": webhook,
        "resourceData": {
            "@odata.type": "#microsoft.graph.call",
            "@odata.id": f"/communications/calls/{call_id}",
            "id": call_id,
            "state": state,
        },
    }


def deliver(callbot: Callbot, *notifications: dict[str, Any]) -> httpx.Response:
    token = callbot.emulator.emulator.identity.notification_token()
    return httpx.post(
        callbot.webhook,
        json={
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": list(notifications),
        },
        headers={
            "Authorization": f"Bearer {token}",
            "X-Microsoft-Skype-Message-ID": str(uuid.uuid4()),
        },
    )


def test_a_late_establishing_in_the_same_batch_cannot_roll_back_a_known_call(
    quiet_bot: Callbot,
) -> None:
    call_id = str(uuid.uuid4())
    hook = quiet_bot.webhook
    deliver(quiet_bot, state_update(call_id, "establishing", hook))

    response = deliver(
        quiet_bot,
        state_update(call_id, "established", hook),
        state_update(call_id, "establishing", hook),
    )

    assert response.status_code == 202
    assert Call.objects.get(graph_id=call_id).state == "established"


def test_a_late_establishing_in_the_first_batch_of_a_call_cannot_roll_it_back(
    quiet_bot: Callbot,
) -> None:
    call_id = str(uuid.uuid4())
    hook = quiet_bot.webhook

    response = deliver(
        quiet_bot,
        state_update(call_id, "established", hook),
        state_update(call_id, "establishing", hook),
    )

    assert response.status_code == 202
    assert Call.objects.get(graph_id=call_id).state == "established"
