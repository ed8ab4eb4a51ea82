from __future__ import annotations

from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """Registers the emulator's management commands; the emulator itself has no models."""

    name = "callbot.simulator"
    label = "simulator"
    verbose_name = "Teams emulator"
