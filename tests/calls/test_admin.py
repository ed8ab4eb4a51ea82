"""Django admin lists every model; the record of what happened (calls, rosters,
actions, events, audit entries) cannot be added or edited there."""

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


@pytest.mark.parametrize("model", ["call", "participant", "action"])
def test_calls_participants_and_actions_cannot_be_added_or_edited(
    client: Client, alice: Any, model: str
) -> None:
    """An action added in the admin could name anyone as its requester and show on
    the call's timeline as theirs; calls and rosters are Graph's account."""
    action = ActionFactory()
    participant = ParticipantFactory(call=action.call)
    pks = {"call": action.call.pk, "participant": participant.pk, "action": action.pk}
    client.force_login(alice)

    assert client.get(f"/admin/calls/{model}/add/").status_code == 403
    page = client.get(f"/admin/calls/{model}/{pks[model]}/change/")
    assert page.status_code == 200  # view only
    assert b'name="_save"' not in page.content
    edited = client.post(
        f"/admin/calls/{model}/{pks[model]}/change/", {"target": "forged"}
    )
    assert edited.status_code == 403
    deleted = client.post(f"/admin/calls/{model}/{pks[model]}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    action.refresh_from_db()
    assert action.target != "forged"
