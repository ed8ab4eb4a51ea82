"""``EMULATOR_*`` variables: read when set, refused by name when they do not parse."""

from __future__ import annotations

import pytest

from callbot.simulator.config import EmulatorConfig, config_from_env


def test_delivery_and_token_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMULATOR_BATCH_MAX", "10")
    monkeypatch.setenv("EMULATOR_MAX_IN_FLIGHT", "1")
    monkeypatch.setenv("EMULATOR_TOKEN_LIFETIME", "600")

    config = config_from_env()

    assert config.batch_max == 10
    assert config.max_in_flight_per_callback == 1
    assert config.token_lifetime == 600.0


def test_unset_variables_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BATCH_MAX", "MAX_IN_FLIGHT", "TOKEN_LIFETIME"):
        monkeypatch.delenv(f"EMULATOR_{name}", raising=False)

    config = config_from_env()

    defaults = EmulatorConfig()
    assert config.batch_max == defaults.batch_max == 50
    assert config.max_in_flight_per_callback == defaults.max_in_flight_per_callback
    assert config.token_lifetime == defaults.token_lifetime == 3600.0


def test_a_value_that_does_not_parse_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMULATOR_MAX_IN_FLIGHT", "many")

    with pytest.raises(ValueError, match="EMULATOR_MAX_IN_FLIGHT"):
        config_from_env()
