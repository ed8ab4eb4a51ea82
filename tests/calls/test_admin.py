"""Django admin lists every model; events and audit entries cannot be edited there."""

from __future__ import annotations

from typing import Any

from django.test import Client

import pytest

from callbot.calls.models import AuditEntry, CallEvent
from tests.factories import ActionFactory, MeetingFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "model", ["meeting", "call", "participant", "callevent", "action", "auditentry"]
)
def test_admin_lists_each_model(client: Client, alice: Any, model: str) -> None:
    ParticipantFactory()
    ActionFactory()
    MeetingFactory()
    client.force_login(alice)
    response = client.get(f"/admin/calls/{model}/")
    assert response.status_code == 200


def test_call_events_and_audit_entries_are_read_only(
    client: Client, alice: Any
) -> None:
    client.force_login(alice)
    assert client.get("/admin/calls/callevent/add/").status_code == 403
    assert client.get("/admin/calls/auditentry/add/").status_code == 403
    entry = AuditEntry.objects.create(
        actor_name="alice", action="mute", outcome="allowed"
    )
    response = client.post(
        f"/admin/calls/auditentry/{entry.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert CallEvent.objects.count() == 0
