"""callbot/settings.py read from a given environment, in a fresh interpreter each
time (settings are read once, at import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Whatever the test run itself was started with must not leak into these cases.
READ_BY_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "GRAPH_",
    "SECRET_KEY",
    "DEBUG",
    "AXES_",
    "SECURE_",
    "SESSION_COOKIE_",
    "CSRF_COOKIE_",
    "HEALTHZ_",
    "CELERY_",
)


class SettingsError(Exception):
    pass


def load_settings(tmp_path: Path, *names: str, **env: str) -> dict[str, Any]:
    """Import callbot.settings under ``env`` (on top of a scrubbed copy of ours) and
    return ``names`` as JSON-able values; raise SettingsError with the import's
    last line when it fails."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(READ_BY_SETTINGS)}
    base.update(CALLBOT_VAR_DIR=str(tmp_path), **env)
    script = (
        "import json, sys, callbot.settings as s; "
        "print(json.dumps({n: getattr(s, n) for n in sys.argv[1:]}, default=str))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise SettingsError(done.stderr.strip().splitlines()[-1])
    values: dict[str, Any] = json.loads(done.stdout)
    return values


def test_sign_in_throttling_defaults_count_account_and_address_apart(
    tmp_path: Path,
) -> None:
    values = load_settings(
        tmp_path, "AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME", "AXES_LOCKOUT_PARAMETERS"
    )
    assert values == {
        "AXES_FAILURE_LIMIT": 5,
        "AXES_COOLOFF_TIME": "0:15:00",
        "AXES_LOCKOUT_PARAMETERS": ["username", "ip_address"],
    }


def test_sign_in_throttling_is_read_from_the_environment(tmp_path: Path) -> None:
    values = load_settings(
        tmp_path,
        "AXES_FAILURE_LIMIT",
        "AXES_COOLOFF_TIME",
        "AXES_LOCKOUT_PARAMETERS",
        AXES_FAILURE_LIMIT="10",
        AXES_COOLOFF_MINUTES="90",
        AXES_LOCKOUT_PARAMETERS="username+ip_address, ip_address",
    )
    assert values == {
        "AXES_FAILURE_LIMIT": 10,
        "AXES_COOLOFF_TIME": "1:30:00",
        "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"], "ip_address"],
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AXES_FAILURE_LIMIT", "many", "AXES_FAILURE_LIMIT must be an integer"),
        ("AXES_COOLOFF_MINUTES", "0", "must be at least 1"),
        ("AXES_LOCKOUT_PARAMETERS", "username,cookie", "not 'cookie'"),
    ],
)
def test_bad_sign_in_throttling_values_stop_the_start(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match="ImproperlyConfigured") as raised:
        load_settings(tmp_path, **{variable: value})
    assert message in str(raised.value)
