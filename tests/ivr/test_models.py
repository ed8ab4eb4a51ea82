"""Prompts, flows and policies as admins edit them: validation on the models and in
the admin, prompt URIs, and the demo data ``manage.py demo_ivr`` installs."""

from __future__ import annotations

import io
import json
import wave
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import modelform_factory
from django.utils import timezone

import pytest

from callbot.graph.limits import REJECT_REASONS
from callbot.ivr.admin import CallPolicyAdmin, CallPolicyForm
from callbot.ivr.flows import FlowState
from callbot.ivr.models import CallPolicy, IvrFlow, IvrSession, Prompt
from callbot.ivr.prompts import PromptNotFoundError, prompt_uri
from tests.factories import CallFactory

pytestmark = pytest.mark.django_db


def wav_upload(name: str = "hello.wav", rate: int = 16000, seconds: float = 1.0) -> Any:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(rate * seconds))
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="audio/wav")


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BOT_PUBLIC_URL = "https://bot.example.net"


# --- prompts -------------------------------------------------------------------------------------
def test_an_uploaded_prompt_in_the_contract_format_is_measured_and_stored() -> None:
    prompt = Prompt(name="hours", audio=wav_upload(seconds=1.5))
    prompt.full_clean()
    prompt.save()
    assert prompt.duration_seconds == 1.5
    assert prompt.size_bytes == 44 + 48000
    assert prompt.audio.name == "prompts/hours.wav"


def test_an_uploaded_prompt_in_another_format_gets_a_clear_error() -> None:
    prompt = Prompt(name="hours", audio=wav_upload(rate=8000))
    with pytest.raises(ValidationError) as raised:
        prompt.full_clean()
    assert raised.value.message_dict["audio"] == [
        "Graph plays only mono 16-bit 16 kHz WAV prompts; this file has 8000 Hz "
        "(needs 16000 Hz)."
    ]


def test_a_prompt_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="not both or neither"):
        Prompt(name="empty").full_clean()
    with pytest.raises(ValidationError, match="not both or neither"):
        Prompt(
            name="both", audio=wav_upload(), static_path="ivr/prompts/menu.wav"
        ).full_clean()


def test_a_shipped_static_prompt_is_checked_and_measured() -> None:
    prompt = Prompt(name="menu-copy", static_path="ivr/prompts/menu.wav")
    prompt.full_clean()
    assert prompt.duration_seconds > 1
    with pytest.raises(ValidationError, match="No static file"):
        Prompt(name="nope", static_path="ivr/prompts/nope.wav").full_clean()


def test_prompt_uri_points_graph_at_the_public_url() -> None:
    assert prompt_uri("menu") == "https://bot.example.net/static/ivr/prompts/menu.wav"
    Prompt.objects.create(name="hours", audio=wav_upload())
    assert prompt_uri("hours").startswith("https://bot.example.net/")
    assert prompt_uri("hours").endswith("hours.wav")
    with pytest.raises(PromptNotFoundError, match="No prompt is named 'nope'"):
        prompt_uri("nope")


# --- flows and policies ----------------------------------------------------------------------------
def test_a_flow_with_unknown_steps_or_prompts_does_not_validate() -> None:
    flow = IvrFlow(
        name="broken",
        start="a",
        steps=[
            {"id": "a", "type": "play", "prompt": "no-such-prompt", "next": "b"},
        ],
    )
    with pytest.raises(ValidationError) as raised:
        flow.full_clean()
    assert raised.value.message_dict["steps"] == [
        "Step 'a' leads to unknown step 'b'",
        "Step 'a': no prompt named 'no-such-prompt'",
    ]


@pytest.mark.usefixtures("demo_ivr")
def test_the_demo_operator_flow_validates_and_runs_from_the_default_policy() -> None:
    flow = IvrFlow.objects.get(name="operator")
    flow.full_clean()
    policy = CallPolicy.objects.get(call_kinds="peer_to_peer", match="default")
    assert (policy.action, policy.flow) == ("answer", flow)
    menu = flow.parsed().step("menu")
    assert menu.branches["0"] == "connecting"
    assert flow.parsed().step("operator").target == "operator"
    assert Prompt.objects.get(name="menu").duration_seconds > 1


def test_a_redirect_policy_needs_one_target_and_numbers_are_e164() -> None:
    policy = CallPolicy(
        name="r", match="number", match_value="4255550199", action="redirect"
    )
    with pytest.raises(ValidationError) as raised:
        policy.full_clean()
    errors = raised.value.message_dict
    assert errors["match_value"] == [
        "Write the number in +E.164 form, e.g. +14255550199."
    ]
    assert errors["target_user_id"] == [
        "A redirect needs exactly one target: a user id or a phone number."
    ]


def test_a_redirect_policy_target_is_an_object_id_or_an_e164_number() -> None:
    by_user = CallPolicy(
        name="r", match="default", action="redirect", target_user_id="agent"
    )
    by_phone = CallPolicy(
        name="r", match="default", action="redirect", target_phone="+1 425 555 0100"
    )
    with pytest.raises(ValidationError) as raised:
        by_user.full_clean()
    assert raised.value.message_dict == {
        "target_user_id": ["Write an Azure AD object id (a GUID)."]
    }
    with pytest.raises(ValidationError) as raised:
        by_phone.full_clean()
    assert raised.value.message_dict == {
        "target_phone": ["Write the number in +E.164 form."]
    }


def test_a_policy_rejects_with_the_reasons_graph_accepts() -> None:
    assert set(CallPolicy.RejectReason.values) == REJECT_REASONS


@pytest.mark.usefixtures("demo_ivr")
def test_only_an_answering_policy_runs_a_flow() -> None:
    flow = IvrFlow.objects.get(name="operator")
    policy = CallPolicy(
        name="r", match="default", action="reject", reject_reason="busy", flow=flow
    )
    with pytest.raises(ValidationError) as raised:
        policy.full_clean()
    assert raised.value.message_dict["flow"] == [
        "Only an answering policy runs a flow."
    ]


# --- admin ---------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("demo_ivr")
def test_the_admin_lists_every_ivr_model(client: Any, alice: Any) -> None:
    client.force_login(alice)
    for model in ("prompt", "callpolicy", "ivrflow", "ivrsession"):
        response = client.get(f"/admin/ivr/{model}/")
        assert response.status_code == 200, model
    response = client.get(
        f"/admin/ivr/ivrflow/{IvrFlow.objects.get(name='operator').pk}/change/"
    )
    assert response.status_code == 200
    # Steps are shown indented, one key per line.
    assert "&quot;id&quot;: &quot;welcome&quot;" in response.content.decode()


def test_saving_a_broken_flow_in_the_admin_shows_every_problem(
    client: Any, alice: Any
) -> None:
    client.force_login(alice)
    steps = [
        {"id": "start", "type": "play", "prompt": "menu", "next": "missing"},
        {"id": "lonely", "type": "hang_up"},
    ]
    response = client.post(
        "/admin/ivr/ivrflow/add/",
        {
            "name": "broken",
            "description": "",
            "start": "start",
            "steps": json.dumps(steps),
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Step &#x27;start&#x27; leads to unknown step &#x27;missing&#x27;" in page
    assert "Step &#x27;lonely&#x27; is unreachable from &#x27;start&#x27;" in page
    assert not IvrFlow.objects.filter(name="broken").exists()


def test_saving_a_valid_flow_in_the_admin_stores_it(client: Any, alice: Any) -> None:
    client.force_login(alice)
    steps = [
        {"id": "hello", "type": "play", "prompt": "welcome", "next": "bye"},
        {"id": "bye", "type": "hang_up"},
    ]
    response = client.post(
        "/admin/ivr/ivrflow/add/",
        {
            "name": "hello",
            "description": "",
            "start": "hello",
            "steps": json.dumps(steps),
        },
    )
    assert response.status_code == 302
    assert IvrFlow.objects.get(name="hello").steps == steps


def test_uploading_a_wrong_prompt_in_the_admin_says_what_is_wrong(
    client: Any, alice: Any
) -> None:
    client.force_login(alice)
    response = client.post(
        "/admin/ivr/prompt/add/",
        {
            "name": "hours",
            "description": "",
            "audio": wav_upload(rate=44100),
            "static_path": "",
        },
    )
    assert response.status_code == 200
    assert "44100 Hz (needs 16000 Hz)" in response.content.decode()
    assert not Prompt.objects.filter(name="hours").exists()

    response = client.post(
        "/admin/ivr/prompt/add/",
        {"name": "hours", "description": "", "audio": wav_upload(), "static_path": ""},
    )
    assert response.status_code == 302
    assert Prompt.objects.get(name="hours").duration_seconds == 1.0


def test_sessions_are_read_only_in_the_admin(client: Any, alice: Any) -> None:
    session = IvrSession.objects.create(
        call=CallFactory(), flow_start="menu", flow_steps=[], current_step="menu"
    )
    client.force_login(alice)
    assert client.get("/admin/ivr/ivrsession/add/").status_code == 403
    page = client.get(f"/admin/ivr/ivrsession/{session.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_a_session_keeps_only_its_recent_history() -> None:
    session = IvrSession(flow_start="menu")
    now = timezone.now()
    for index in range(150):
        session.store(FlowState(step=f"step-{index}"), now)
    assert len(session.history) == 100
    assert session.history[-1]["step"] == "step-149"


@pytest.mark.urls("callbot.ivr.urls")
def test_an_uploaded_prompt_is_served_at_its_public_uri(client: Any) -> None:
    Prompt.objects.create(name="hours", audio=wav_upload())
    uri = prompt_uri("hours")
    assert uri == "https://bot.example.net/ivr/prompts/hours.wav"

    response = client.get("/ivr/prompts/hours.wav")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert b"".join(response.streaming_content)[:4] == b"RIFF"
    assert client.get("/ivr/prompts/menu.wav").status_code == 404


def test_a_hand_off_policy_needs_a_fallback_and_a_wait_inside_the_answer_window() -> (
    None
):
    no_fallback = CallPolicy(
        name="hand-off", match="default", action="supervisors", max_wait_seconds=10
    )
    too_long = CallPolicy(
        name="hand-off",
        match="default",
        action="supervisors",
        fallback="reject",
        max_wait_seconds=15,
    )
    redirect_without_target = CallPolicy(
        name="hand-off",
        match="default",
        action="supervisors",
        fallback="redirect",
        max_wait_seconds=8,
    )

    with pytest.raises(ValidationError) as missing:
        no_fallback.full_clean()
    with pytest.raises(ValidationError) as late:
        too_long.full_clean()
    with pytest.raises(ValidationError) as targetless:
        redirect_without_target.full_clean()

    assert "fallback" in missing.value.message_dict
    assert "Teams ends a call" in late.value.message_dict["max_wait_seconds"][0]
    assert "target_user_id" in targetless.value.message_dict


def test_a_hand_off_falling_back_to_an_answer_may_run_a_flow() -> None:
    flow = IvrFlow.objects.create(
        name="bye", start="bye", steps=[{"id": "bye", "type": "hang_up"}]
    )
    policy = CallPolicy(
        name="hand-off",
        match="default",
        action="supervisors",
        fallback="answer",
        max_wait_seconds=5,
        flow=flow,
    )

    policy.full_clean()

    assert policy.decision == "answer"


POLICY_FORM = {
    "name": "front desk",
    "enabled": "on",
    "priority": "10",
    "match": "default",
    "match_value": "",
    "call_kinds": "peer_to_peer",
    "action": "answer",
    "flow": "",
    "reject_reason": "none",
    "target_user_id": "",
    "target_phone": "",
    "target_display_name": "",
    "max_wait_seconds": "10",
    "fallback": "",
}
PHONE = "+14255550199"


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"action": "answer"}, {}),
        ({"action": "answer", "flow": "operator"}, {}),
        ({"action": "reject", "reject_reason": "busy"}, {}),
        ({"action": "redirect", "target_phone": PHONE}, {}),
        ({"action": "supervisors", "fallback": "answer", "flow": "operator"}, {}),
        ({"action": "supervisors", "fallback": "reject"}, {}),
        ({"action": "supervisors", "fallback": "redirect", "target_phone": PHONE}, {}),
        ({"action": "reject", "flow": "operator"}, {"flow"}),
        ({"action": "redirect"}, {"target_user_id"}),
        ({"action": "redirect", "target_phone": "555"}, {"target_phone"}),
        ({"action": "supervisors"}, {"fallback"}),
        ({"action": "supervisors", "flow": "operator"}, {"fallback", "flow"}),
        (
            {"action": "supervisors", "fallback": "reject", "max_wait_seconds": "0"},
            {"max_wait_seconds"},
        ),
        (
            {"action": "supervisors", "fallback": "reject", "max_wait_seconds": "900"},
            {"max_wait_seconds"},
        ),
        ({"action": "supervisors", "fallback": "redirect"}, {"target_user_id"}),
        ({"match": "number", "match_value": "555"}, {"match_value"}),
    ],
)
@pytest.mark.usefixtures("demo_ivr")
def test_each_kind_of_policy_is_saved_or_refused_on_a_shown_field_in_the_admin(
    client: Any, alice: Any, changes: dict[str, str], errors: set[str]
) -> None:
    """Every action, the hand-off to supervisors too, can be configured in the
    admin's change form; what the model refuses shows beside the field that is
    wrong, never as a server error."""
    policy = CallPolicy.objects.create(
        name="front desk", match="default", action="answer"
    )
    data = {**POLICY_FORM, **changes}
    if data["flow"]:
        data["flow"] = str(IvrFlow.objects.get(name=data["flow"]).pk)
    client.force_login(alice)
    url = f"/admin/ivr/callpolicy/{policy.pk}/change/"

    response = client.post(url, data)

    if not errors:
        assert response.status_code == 302, response.context["adminform"].form.errors
        policy.refresh_from_db()
        assert policy.action == data["action"]
        assert policy.fallback == data["fallback"]
        return
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.errors) == errors
    shown = {
        name for _, options in CallPolicyAdmin.fieldsets for name in options["fields"]
    }
    assert errors <= shown
    policy.refresh_from_db()
    assert policy.action == "answer"


def test_the_policy_admin_explains_the_hand_off_fields(client: Any, alice: Any) -> None:
    policy = CallPolicy.objects.create(name="desk", match="default", action="answer")
    client.force_login(alice)
    page = client.get(f"/admin/ivr/callpolicy/{policy.pk}/change/").content.decode()
    assert 'name="max_wait_seconds"' in page
    assert 'name="fallback"' in page
    assert "what the bot does when nobody decided in time" in page


def test_a_policy_error_on_a_field_the_form_leaves_out_is_shown_above_it() -> None:
    narrow = modelform_factory(
        CallPolicy,
        form=CallPolicyForm,
        fields=["name", "enabled", "priority", "match", "call_kinds", "action"],
    )
    form = narrow(
        {"name": "desk", "enabled": "on", "priority": "1", "match": "default"}
        | {"call_kinds": "any", "action": "supervisors"}
    )
    assert not form.is_valid()
    assert form.non_field_errors() == [
        "Fallback: Say what the bot does when no supervisor decides in time."
    ]
