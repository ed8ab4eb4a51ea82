"""The runtime: policies applied to new calls, sessions moved by call activity and by
the timeout sweep, all through ``request_action`` (Graph is not called: the
``perform_action`` tasks are left in the on-commit queue)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

import pytest

from callbot.calls.models import Action, AuditEntry
from callbot.calls.signals import CallActivity, call_activity
from callbot.calls.states import CallState
from callbot.ivr import runtime
from callbot.ivr.models import CallPolicy, IvrFlow, IvrSession
from tests.factories import CallFactory

pytestmark = pytest.mark.django_db

BOT_APP = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
BOT_INSTANCE = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
OPERATOR_ID = "0f9e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"

MENU = [
    {
        "id": "menu",
        "type": "collect",
        "prompt": "menu",
        "timeout": 5,
        "branches": {"0": "operator"},
        "default": "goodbye",
        "on_timeout": "no-input",
    },
    {"id": "no-input", "type": "play", "prompt": "no-input", "next": "goodbye"},
    {"id": "operator", "type": "transfer", "target": "operator"},
    {"id": "goodbye", "type": "play", "prompt": "goodbye", "next": "bye"},
    {"id": "bye", "type": "hang_up"},
]


def bot_target(kind: str = "application", ident: str = BOT_APP) -> list[dict[str, Any]]:
    return [{"identity": {kind: {"id": ident, "displayName": "Callbot"}}}]


@pytest.fixture
def menu_flow() -> IvrFlow:
    return IvrFlow.objects.create(name="menu", start="menu", steps=MENU)


def incoming_call(**kwargs: Any) -> Any:
    kwargs.setdefault("targets", bot_target())
    return CallFactory(state=CallState.INCOMING, **kwargs)


def actions(call: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(a.kind, a.parameters) for a in call.actions.order_by("pk")]


def answered_at_menu(call: Any, flow: IvrFlow) -> IvrSession:
    """Apply the policy, then let the call be established and the menu finish."""
    CallPolicy.objects.create(
        name="ivr", match="default", action="answer", flow=flow, priority=1
    )
    assert runtime.apply_policy(call.pk) == "answered into a flow"
    call.state = CallState.ESTABLISHED
    call.save()
    runtime.handle_activity(call.pk, state="established", state_changed=True)
    session = IvrSession.objects.get(call=call)
    runtime.handle_activity(
        call.pk,
        finished_actions=[(session.awaiting_action_id, "play_prompt", "completed")],
    )
    session.refresh_from_db()
    assert session.phase == "collecting"
    return session


# --- policies ------------------------------------------------------------------------------------
def test_an_answer_policy_with_a_flow_answers_and_opens_a_session(
    menu_flow: IvrFlow, django_capture_on_commit_callbacks: Any
) -> None:
    CallPolicy.objects.create(
        name="ivr", match="default", action="answer", flow=menu_flow
    )
    call = incoming_call()
    with django_capture_on_commit_callbacks() as callbacks:
        assert runtime.apply_policy(call.pk) == "answered into a flow"

    [(kind, params)] = actions(call)
    assert kind == "answer"
    assert any(
        uri.endswith("/static/ivr/prompts/menu.wav") for uri in params["prompt_uris"]
    )
    session = IvrSession.objects.get(call=call)
    assert (session.status, session.phase, session.flow_start) == (
        "running",
        "answering",
        "menu",
    )
    assert AuditEntry.objects.filter(
        call=call, action="answer", actor_name="callbot"
    ).exists()
    # The Graph request is a task enqueued after commit.
    assert callbacks


def test_a_reject_policy_rejects_with_its_reason() -> None:
    CallPolicy.objects.create(
        name="busy", match="default", action="reject", reject_reason="busy"
    )
    call = incoming_call()
    assert runtime.apply_policy(call.pk) == "rejected"
    assert actions(call) == [("reject", {"reason": "busy"})]
    assert not IvrSession.objects.filter(call=call).exists()


def test_a_redirect_policy_redirects_to_its_target() -> None:
    CallPolicy.objects.create(
        name="desk",
        match="default",
        action="redirect",
        target_phone="+14255550123",
        target_display_name="Front desk",
    )
    call = incoming_call()
    assert runtime.apply_policy(call.pk) == "redirected"
    assert actions(call) == [
        ("redirect", {"target": {"phone": "+14255550123", "display_name": ""}})
    ]


def test_a_policy_for_the_called_identity_wins_over_the_default() -> None:
    CallPolicy.objects.create(name="all", match="default", action="answer", priority=1)
    CallPolicy.objects.create(
        name="instance",
        match="identity",
        match_value=BOT_INSTANCE.upper(),
        action="reject",
        priority=1,
    )
    call = incoming_call(targets=bot_target("applicationInstance", BOT_INSTANCE))
    assert runtime.choose_policy(call).name == "instance"  # type: ignore[union-attr]


def test_a_policy_for_the_called_number_matches_phone_targets() -> None:
    CallPolicy.objects.create(
        name="sales line", match="number", match_value="+14255550199", action="reject"
    )
    other = incoming_call()
    called = incoming_call(
        targets=[
            {
                "identity": {
                    "applicationInstance": {"id": BOT_INSTANCE},
                    "phone": {"id": "+14255550199"},
                }
            }
        ]
    )
    assert runtime.choose_policy(other) is None
    assert runtime.choose_policy(called).name == "sales line"  # type: ignore[union-attr]


def test_disabled_policies_and_other_call_kinds_do_not_match() -> None:
    CallPolicy.objects.create(
        name="off", match="default", action="reject", enabled=False
    )
    CallPolicy.objects.create(
        name="meetings", match="default", action="answer", call_kinds="group"
    )
    assert runtime.choose_policy(incoming_call()) is None
    assert runtime.choose_policy(incoming_call(kind="meeting")).name == "meetings"  # type: ignore[union-attr]


def test_a_call_is_decided_once_even_if_the_task_runs_again(menu_flow: IvrFlow) -> None:
    CallPolicy.objects.create(
        name="ivr", match="default", action="answer", flow=menu_flow
    )
    call = incoming_call()
    runtime.apply_policy(call.pk)
    assert runtime.apply_policy(call.pk) == "already decided"
    assert len(actions(call)) == 1


def test_no_matching_policy_leaves_the_call_ringing() -> None:
    call = incoming_call()
    assert runtime.apply_policy(call.pk) == "no policy"
    assert actions(call) == []


# --- sessions ---------------------------------------------------------------------------------------
def test_once_established_the_bot_listens_for_tones_and_plays_the_menu(
    menu_flow: IvrFlow,
) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    kinds = [kind for kind, _ in actions(call)]
    assert kinds == ["answer", "subscribe_to_tone", "play_prompt"]
    assert actions(call)[2][1]["name"] == "menu"
    assert actions(call)[2][1]["uri"].endswith("/static/ivr/prompts/menu.wav")


def test_pressing_zero_transfers_the_caller_to_the_operator(menu_flow: IvrFlow) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)

    runtime.handle_activity(call.pk, tones=["0"])

    kind, params = actions(call)[-1]
    assert kind == "transfer"
    assert params["target"] == {"user_id": OPERATOR_ID, "display_name": "Operator"}
    session = IvrSession.objects.get(call=call)
    assert (session.current_step, session.phase) == ("operator", "transferring")
    assert session.awaiting_action_id == call.actions.get(kind="transfer").pk
    assert [h["step"] for h in session.history] == ["menu", "operator"]
    # The path the history filters on: the steps and the option chosen.
    assert session.path == " menu menu:0 operator "


def test_the_sweep_takes_the_timeout_branch_once_the_deadline_passed(
    menu_flow: IvrFlow,
) -> None:
    call = incoming_call()
    session = answered_at_menu(call, menu_flow)
    assert session.deadline is not None

    assert runtime.sweep_timeouts(session.deadline - timedelta(seconds=1)) == 0
    assert runtime.sweep_timeouts(session.deadline) == 1

    session.refresh_from_db()
    assert (session.current_step, session.outcome) == ("no-input", "no keys pressed")
    assert session.path == " menu no-input "
    assert actions(call)[-1] == (
        "play_prompt",
        {"uri": actions(call)[-1][1]["uri"], "name": "no-input"},
    )
    assert runtime.sweep_timeouts(timezone.now() + timedelta(minutes=1)) == 0


def test_the_call_ending_ends_the_session(menu_flow: IvrFlow) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    runtime.handle_activity(call.pk, terminated=True, state="terminated")
    session = IvrSession.objects.get(call=call)
    assert (session.status, session.deadline) == ("ended", None)


def test_a_refused_request_fails_the_session_with_the_reason(
    menu_flow: IvrFlow,
) -> None:
    call = incoming_call()
    answered_at_menu(call, menu_flow)
    # The call went on hold between the notification and the task: the service
    # refuses the transfer; the bot hangs up rather than leave the caller stuck.
    call.state = CallState.HOLD
    call.save()

    runtime.handle_activity(call.pk, tones=["0"])

    session = IvrSession.objects.get(call=call)
    assert session.status == "failed"
    assert session.outcome.startswith("transfer refused: Cannot transfer a call")
    assert actions(call)[-1][0] == "hang_up"
    assert AuditEntry.objects.filter(
        call=call, action="transfer", outcome="refused"
    ).exists()


# --- the signal -----------------------------------------------------------------------------------------
def test_call_activity_for_a_new_incoming_call_applies_the_policy(
    menu_flow: IvrFlow, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    CallPolicy.objects.create(
        name="ivr", match="default", action="answer", flow=menu_flow
    )
    call = incoming_call()
    roster_only = incoming_call()

    call_activity.send(
        sender=None,
        activity=[
            CallActivity(
                call_id=call.pk,
                graph_id=call.graph_id,
                created=True,
                direction="incoming",
                kind="peer_to_peer",
                state="incoming",
                state_changed=False,
            ),
            CallActivity(
                call_id=roster_only.pk,
                graph_id=roster_only.graph_id,
                created=False,
                direction="incoming",
                kind="peer_to_peer",
                state="incoming",
                state_changed=False,
            ),
        ],
    )

    assert [kind for kind, _ in actions(call)] == ["answer"]
    assert actions(roster_only) == []
    assert Action.objects.filter(call=call).count() == 1
