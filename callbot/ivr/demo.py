"""The demo IVR: the shipped prompts as ``Prompt`` rows, the "operator" flow, and two
call policies (peer-to-peer calls answered into that flow, meeting and group call
invites answered). ``manage.py demo_ivr`` installs it; ``make run`` calls that.

Installing creates only what is missing and never changes a row that exists, so what
an admin edited survives every ``make run``. The call policies are created only while
there are no call policies at all: an admin who has set up their own (or removed a
demo one) is not overruled.

Reads and writes only the IVR's own configuration rows; calls are none of its business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from callbot.ivr.models import CallPolicy, IvrFlow, Prompt
from callbot.ivr.prompts import SHIPPED_PROMPTS, SHIPPED_STATIC_PREFIX

FLOW_NAME = "operator"
FLOW_DESCRIPTION = (
    "Welcome, a menu (1: leave a message, 2: repeat, 0: a supervisor or, after a "
    "minute's wait, the operator), goodbye."
)
FLOW_START = "welcome"
FLOW_STEPS: list[dict[str, Any]] = [
    {"id": "welcome", "type": "play", "prompt": "welcome", "next": "menu"},
    {
        "id": "menu",
        "type": "collect",
        "prompt": "menu",
        "timeout": 5,
        "max_digits": 1,
        "terminator": "#",
        "branches": {"1": "leave-message", "2": "menu", "0": "connecting"},
        "default": "invalid",
        "on_timeout": "no-input",
    },
    {"id": "invalid", "type": "play", "prompt": "invalid", "next": "menu"},
    {"id": "no-input", "type": "play", "prompt": "no-input", "next": "goodbye"},
    {"id": "connecting", "type": "play", "prompt": "connecting", "next": "queue"},
    # A supervisor may take the call from the board; after a minute, the operator.
    {"id": "queue", "type": "supervisors", "max_wait": 60, "next": "operator"},
    {
        "id": "operator",
        "type": "transfer",
        "target": "operator",
        "on_failure": "goodbye",
    },
    {
        "id": "leave-message",
        "type": "record",
        "prompt": "record-after-beep",
        "max_record_duration": 30,
        "initial_silence_timeout": 5,
        "max_silence_timeout": 3,
        "stop_tones": ["#"],
        "play_beep": True,
        "next": "goodbye",
    },
    {"id": "goodbye", "type": "play", "prompt": "goodbye", "next": "hang-up"},
    {"id": "hang-up", "type": "hang_up"},
]
PEER_TO_PEER_POLICY = "Demo: answer calls into the operator menu"
INVITE_POLICY = "Demo: answer meeting and group call invites"


@dataclass(frozen=True)
class DemoCreated:
    """What one ``install_demo`` created (zero and False: it was all there)."""

    prompts: int
    flow: bool
    policies: int


def install_demo(*, enable_policies: bool) -> DemoCreated:
    """Create the demo prompts, flow and policies that are missing, in one transaction.

    1. Each shipped prompt without a ``Prompt`` row gets one pointing at its static
       file, checked and measured as the admin does (``full_clean``).
    2. The "operator" flow is created unless a flow of that name exists; it is
       checked against the prompts like a flow saved in the admin.
    3. The two demo policies are created, enabled or not as ``enable_policies`` says,
       only if there is no call policy at all.

    Raises ``ValidationError`` if a shipped prompt file is missing or not in the
    contract's format (a broken checkout), or the flow does not validate.
    """
    with transaction.atomic():
        prompts = 0
        existing = set(
            Prompt.objects.filter(name__in=SHIPPED_PROMPTS).values_list(
                "name", flat=True
            )
        )
        for name, text in SHIPPED_PROMPTS.items():
            if name in existing:
                continue
            prompt = Prompt(
                name=name,
                description=text,
                static_path=f"{SHIPPED_STATIC_PREFIX}{name}.wav",
            )
            prompt.full_clean()
            prompt.save()
            prompts += 1

        flow = IvrFlow.objects.filter(name=FLOW_NAME).first()
        flow_created = flow is None
        if flow is None:
            flow = IvrFlow(
                name=FLOW_NAME,
                description=FLOW_DESCRIPTION,
                start=FLOW_START,
                steps=FLOW_STEPS,
            )
            flow.full_clean()
            flow.save()

        policies = 0
        if not CallPolicy.objects.exists():
            CallPolicy.objects.create(
                name=PEER_TO_PEER_POLICY,
                enabled=enable_policies,
                priority=100,
                match=CallPolicy.Match.DEFAULT,
                call_kinds=CallPolicy.CallKinds.PEER_TO_PEER,
                action=CallPolicy.Do.ANSWER,
                flow=flow,
            )
            CallPolicy.objects.create(
                name=INVITE_POLICY,
                enabled=enable_policies,
                priority=100,
                match=CallPolicy.Match.DEFAULT,
                call_kinds=CallPolicy.CallKinds.GROUP,
                action=CallPolicy.Do.ANSWER,
            )
            policies = 2
    return DemoCreated(prompts=prompts, flow=flow_created, policies=policies)
