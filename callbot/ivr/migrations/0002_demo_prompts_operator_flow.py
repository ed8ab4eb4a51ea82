"""Shipped prompts as Prompt rows, the demo "operator" IVR flow, and demo policies:
peer-to-peer calls are answered into the flow, meeting invites are answered."""

import wave
from pathlib import Path

from django.db import migrations

PROMPTS = {
    "welcome": "Hello, and thank you for calling.",
    "menu": "Thank you for calling. Press 1 to leave a message. Press 2 to hear these options again. Press 0 for the operator.",
    "invalid": "Sorry, that is not an option.",
    "no-input": "We did not hear a choice.",
    "connecting": "Please hold while we connect you to the operator.",
    "record-after-beep": "Please leave your message after the beep, and press pound when you are done.",
    "goodbye": "Thank you for calling. Goodbye.",
}
PROMPT_DIR = Path(__file__).resolve().parent.parent / "static" / "ivr" / "prompts"

OPERATOR_FLOW = [
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
    {"id": "connecting", "type": "play", "prompt": "connecting", "next": "operator"},
    {"id": "operator", "type": "transfer", "target": "operator", "on_failure": "goodbye"},
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


def _measure(path):
    with wave.open(str(path), "rb") as wav:
        return round(wav.getnframes() / wav.getframerate(), 2), path.stat().st_size


def create_demo(apps, schema_editor):
    Prompt = apps.get_model("ivr", "Prompt")
    IvrFlow = apps.get_model("ivr", "IvrFlow")
    CallPolicy = apps.get_model("ivr", "CallPolicy")
    for name, text in PROMPTS.items():
        path = PROMPT_DIR / f"{name}.wav"
        duration, size = _measure(path) if path.is_file() else (0, 0)
        Prompt.objects.get_or_create(
            name=name,
            defaults={
                "description": text,
                "static_path": f"ivr/prompts/{name}.wav",
                "duration_seconds": duration,
                "size_bytes": size,
            },
        )
    flow, _ = IvrFlow.objects.get_or_create(
        name="operator",
        defaults={
            "description": "Welcome, a menu (1: leave a message, 2: repeat, 0: the operator), goodbye.",
            "start": "welcome",
            "steps": OPERATOR_FLOW,
        },
    )
    if not CallPolicy.objects.exists():
        CallPolicy.objects.create(
            name="Demo: answer calls into the operator menu",
            priority=100,
            match="default",
            call_kinds="peer_to_peer",
            action="answer",
            flow=flow,
        )
        CallPolicy.objects.create(
            name="Demo: answer meeting and group call invites",
            priority=100,
            match="default",
            call_kinds="group",
            action="answer",
        )


def remove_demo(apps, schema_editor):
    apps.get_model("ivr", "CallPolicy").objects.filter(name__startswith="Demo: ").delete()
    apps.get_model("ivr", "IvrFlow").objects.filter(name="operator").delete()
    apps.get_model("ivr", "Prompt").objects.filter(name__in=list(PROMPTS)).delete()


class Migration(migrations.Migration):
    dependencies = [("ivr", "0001_call_policy_flows_prompts_sessions")]

    operations = [migrations.RunPython(create_demo, remove_demo)]
