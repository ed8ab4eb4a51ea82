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


GRAPH_TENANT = {
    "GRAPH_TENANT_ID": "4c4e1b1e-8f4a-4b0e-9a43-2c9e8a1f5b10",
    "GRAPH_CLIENT_ID": "app",
    "GRAPH_CLIENT_SECRET": "app-secret",
}


def test_the_embedded_default_starts_with_the_development_key(tmp_path: Path) -> None:
    assert load_settings(tmp_path, "SECRET_KEY")["SECRET_KEY"]


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": "postgres://callbot@db.example.com:5432/callbot"},
        {"REDIS_URL": "redis://cache.example.com:6379/0"},
        GRAPH_TENANT,
        # Naming the public key outright is no better than leaving it out.
        {
            "DATABASE_URL": "postgres://callbot@db.example.com:5432/callbot",
            "SECRET_KEY": "callbot-embedded-default-not-for-production",
        },
    ],
    ids=["postgres", "redis", "tenant", "public-key-named"],
)
def test_outside_the_embedded_default_the_public_key_stops_the_start(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with pytest.raises(SettingsError, match="ImproperlyConfigured") as raised:
        load_settings(tmp_path, "SECRET_KEY", **env)
    assert "SECRET_KEY" in str(raised.value)
    assert "SECRET_KEY_FILE" in str(raised.value)


def test_a_key_of_ones_own_from_the_environment_or_a_file_is_accepted(
    tmp_path: Path,
) -> None:
    production = {"DATABASE_URL": "postgres://callbot@db.example.com:5432/callbot"}
    key_file = tmp_path / "django-key"
    key_file.write_text("from-a-file-0123456789abcdef0123456789abcdef\n")
    assert load_settings(
        tmp_path, "SECRET_KEY", SECRET_KEY="own-key-0123456789", **production
    ) == {"SECRET_KEY": "own-key-0123456789"}
    assert load_settings(
        tmp_path, "SECRET_KEY", SECRET_KEY_FILE=str(key_file), **production
    ) == {"SECRET_KEY": "from-a-file-0123456789abcdef0123456789abcdef"}


HTTPS_NAMES = (
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)


def test_https_settings_are_off_by_default(tmp_path: Path) -> None:
    assert load_settings(tmp_path, *HTTPS_NAMES) == {
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
    }


def test_https_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    values = load_settings(
        tmp_path,
        *HTTPS_NAMES,
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
        SECURE_SSL_REDIRECT="true",
        SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        SESSION_COOKIE_SECURE="true",
    )
    assert values == {
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,  # follows the session cookie unless set
    }


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SECURE_HSTS_SECONDS", "a year", "must be an integer"),
        ("SECURE_HSTS_SECONDS", "-1", "SECURE_HSTS_SECONDS must be 0 or more"),
        ("SECURE_SSL_REDIRECT", "sometimes", "must be a boolean"),
        ("SECURE_PROXY_SSL_HEADER", "X Forwarded Proto", "a header name"),
    ],
)
def test_bad_https_values_stop_the_start(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match="ImproperlyConfigured") as raised:
        load_settings(tmp_path, **{variable: value})
    assert message in str(raised.value)


@pytest.mark.django_db
def test_behind_https_pages_redirect_and_pin_https_but_healthz_answers(
    settings: Any,
) -> None:
    from django.test import Client

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()

    plain = client.get("/accounts/login/")
    assert (plain.status_code, plain["Location"]) == (
        301,
        "https://testserver/accounts/login/",
    )
    assert client.get("/healthz").status_code == 200

    proxied = client.get("/accounts/login/", headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"


def test_the_webhook_defers_unless_postgresql_has_no_redis(
    tmp_path: Path,
) -> None:
    names = ("WEBHOOK_APPLY", "WEBHOOK_INBOX_APPLIER")
    embedded = load_settings(tmp_path, *names)
    no_redis = load_settings(
        tmp_path,
        *names,
        DATABASE_URL="postgres://callbot@db.example.com:5432/callbot",
        SECRET_KEY="a-key-of-our-own-0123456789abcdef-0123456789",
    )
    deployed = load_settings(
        tmp_path,
        *names,
        DATABASE_URL="postgres://callbot@db.example.com:5432/callbot",
        REDIS_URL="redis://cache.example.com:6379/0",
        SECRET_KEY="a-key-of-our-own-0123456789abcdef-0123456789",
    )

    assert embedded == {"WEBHOOK_APPLY": "deferred", "WEBHOOK_INBOX_APPLIER": "thread"}
    assert no_redis == {"WEBHOOK_APPLY": "inline", "WEBHOOK_INBOX_APPLIER": "thread"}
    assert deployed == {"WEBHOOK_APPLY": "deferred", "WEBHOOK_INBOX_APPLIER": "process"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEBHOOK_APPLY": "later"}, "WEBHOOK_APPLY"),
        ({"WEBHOOK_INBOX_APPLIER": "fork"}, "WEBHOOK_INBOX_APPLIER"),
        ({"WEBHOOK_INBOX_APPLIER": "process"}, "needs REDIS_URL"),
        ({"WEBHOOK_INBOX_APPLIER_NICE": "20"}, "WEBHOOK_INBOX_APPLIER_NICE"),
        ({"WEBHOOK_INBOX_APPLIER_NICE": "-1"}, "WEBHOOK_INBOX_APPLIER_NICE"),
    ],
)
def test_bad_webhook_apply_settings_stop_the_start(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match="ImproperlyConfigured") as raised:
        load_settings(tmp_path, **env)
    assert message in str(raised.value)


def test_with_redis_every_process_shares_the_caches(tmp_path: Path) -> None:
    """The worker keeps the app token's roles in the default cache for the web
    processes (``calls/app_permissions.py``) and the API counts each token's
    requests in its own: with Redis both live there. The API's settings had
    replaced the whole ``CACHES``, leaving the default in each process's memory,
    where the web processes never saw what the worker read."""
    redis = "redis://redis.example.com:6379/0"
    caches = load_settings(
        tmp_path, "CACHES", REDIS_URL=redis, SECRET_KEY="own-key-0123456789"
    )["CACHES"]
    for name in ("default", "api-throttle"):
        assert caches[name]["BACKEND"].endswith("RedisCache"), name
        assert caches[name]["LOCATION"] == redis, name
    # Apart, so clearing one never empties the other.
    assert caches["default"]["KEY_PREFIX"] != caches["api-throttle"]["KEY_PREFIX"]
    embedded = load_settings(tmp_path, "CACHES")["CACHES"]
    for name in ("default", "api-throttle"):
        assert embedded[name]["BACKEND"].endswith("LocMemCache"), name
