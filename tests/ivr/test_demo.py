"""``manage.py demo_ivr``: the demo prompts, "operator" flow and call policies that
``make run`` installs, once, switched off on a real tenant."""

from __future__ import annotations

import io
from typing import Any

from django.core.management import CommandError, call_command

import pytest

from callbot.ivr.demo import INVITE_POLICY, PEER_TO_PEER_POLICY
from callbot.ivr.models import CallPolicy, IvrFlow, Prompt
from callbot.ivr.prompts import SHIPPED_PROMPTS

pytestmark = pytest.mark.django_db


def demo_ivr() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("demo_ivr", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def rows() -> tuple[int, int, int]:
    return Prompt.objects.count(), IvrFlow.objects.count(), CallPolicy.objects.count()


def test_migrations_install_no_demo_data() -> None:
    assert rows() == (0, 0, 0)


def test_demo_ivr_creates_the_demo_once(settings: Any) -> None:
    settings.USE_EMULATOR = True
    out, err = demo_ivr()
    assert out == 'Demo IVR: created 7 prompts, the "operator" flow, 2 call policies.\n'
    assert err == ""
    assert set(Prompt.objects.values_list("name", flat=True)) == set(SHIPPED_PROMPTS)
    assert Prompt.objects.get(name="menu").duration_seconds > 1
    flow = IvrFlow.objects.get(name="operator")
    answer_calls = CallPolicy.objects.get(name=PEER_TO_PEER_POLICY)
    answer_invites = CallPolicy.objects.get(name=INVITE_POLICY)
    assert (answer_calls.enabled, answer_calls.call_kinds, answer_calls.flow) == (
        True,
        "peer_to_peer",
        flow,
    )
    assert (answer_invites.enabled, answer_invites.call_kinds) == (True, "group")
    assert answer_invites.flow is None

    out, err = demo_ivr()
    assert out == "Demo IVR: created nothing new.\n"
    assert rows() == (7, 1, 2)


def test_demo_ivr_on_a_real_tenant_creates_the_policies_switched_off_and_says_so(
    settings: Any,
) -> None:
    settings.USE_EMULATOR = False
    out, err = demo_ivr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("Demo IVR on a real tenant (GRAPH_TENANT_ID is set): ")
    assert "switched off" in err
    assert rows() == (7, 1, 2)
    assert not CallPolicy.objects.filter(enabled=True).exists()

    _, err = demo_ivr()
    assert "created nothing new" in err
    assert rows() == (7, 1, 2)


def test_demo_ivr_leaves_an_admins_policies_and_edits_alone(settings: Any) -> None:
    settings.USE_EMULATOR = True
    CallPolicy.objects.create(name="ours", match="default", action="reject")
    IvrFlow.objects.create(
        name="operator",
        start="bye",
        steps=[{"id": "bye", "type": "hang_up"}],
    )
    out, _ = demo_ivr()
    assert out == "Demo IVR: created 7 prompts.\n"
    assert list(CallPolicy.objects.values_list("name", flat=True)) == ["ours"]
    assert IvrFlow.objects.get(name="operator").start == "bye"


def test_demo_ivr_creates_nothing_when_a_shipped_prompt_is_missing(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.USE_EMULATOR = True
    monkeypatch.setattr("callbot.ivr.demo.SHIPPED_STATIC_PREFIX", "ivr/nowhere/")
    with pytest.raises(
        CommandError, match=r"No static file 'ivr/nowhere/welcome\.wav'"
    ):
        demo_ivr()
    assert rows() == (0, 0, 0)
