"""factory_boy factories with Faker defaults; tests override only what they are about."""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

import factory

from callbot.calls.models import Action, Call, Meeting, Participant
from callbot.calls.states import CallDirection, CallKind, CallState
from callbot.graph.resources import normalise_id


def _graph_id() -> str:
    return str(uuid.uuid4())


class MeetingFactory(factory.django.DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = Meeting

    subject = factory.Faker("catch_phrase")
    thread_id = factory.LazyFunction(lambda: f"19:meeting_{uuid.uuid4().hex}@thread.v2")
    message_id = "0"
    organizer_id = factory.LazyFunction(_graph_id)
    tenant_id = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"


class CallFactory(factory.django.DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = Call

    graph_id = factory.LazyFunction(_graph_id)
    graph_key = factory.LazyAttribute(lambda o: normalise_id(o.graph_id))
    tenant_id = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
    direction = CallDirection.INCOMING
    kind = CallKind.PEER_TO_PEER
    state = CallState.ESTABLISHED
    source_display = factory.Faker("name")
    my_participant_id = factory.LazyFunction(_graph_id)


class ParticipantFactory(factory.django.DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = Participant

    call = factory.SubFactory(CallFactory)
    graph_id = factory.LazyFunction(_graph_id)
    graph_key = factory.LazyAttribute(lambda o: normalise_id(o.graph_id))
    identity_kind = Participant.IdentityKind.USER
    identity_id = factory.LazyFunction(_graph_id)
    display_name = factory.Faker("name")
    joined_at = factory.LazyFunction(timezone.now)


class ActionFactory(factory.django.DjangoModelFactory):  # type: ignore[misc]
    class Meta:
        model = Action

    call = factory.SubFactory(CallFactory)
    kind = Action.Kind.PLAY_PROMPT

    @classmethod
    def _adjust_kwargs(cls, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("operation_id") and not kwargs.get("operation_key"):
            kwargs["operation_key"] = normalise_id(kwargs["operation_id"])
        return kwargs
