"""docker/compose.yml is the production shape docs/deploy.md describes: every
service has a health check, secrets come from files, the proxy fronts both web
processes, and its settings pass ``manage.py check --deploy``."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yml"
CADDYFILE = ROOT / "docker" / "Caddyfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"caddy", "web1", "web2", "worker", "beat", "postgres", "redis"} <= set(
        services
    )
    missing = [
        name
        for name, service in services.items()
        if not service.get("healthcheck", {}).get("test")
        or service["healthcheck"].get("disable")
    ]
    assert missing == []


def test_the_emulator_is_a_profile_of_its_own(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["emulator"]["profiles"] == ["emulator"]
    assert all("profiles" not in s for n, s in services.items() if n != "emulator")


def test_secrets_are_files_and_each_file_setting_names_a_declared_secret(
    compose: dict[str, Any],
) -> None:
    declared = set(compose["secrets"])
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            assert not re.search(r"(SECRET|PASSWORD|TOKEN|KEY)$", key) or (
                key == "SECURE_PROXY_SSL_HEADER"
            ), f"{name}: {key} in plain text; use {key}_FILE"
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert secret in declared, f"{name}: {key}"
                assert secret in service.get("secrets", []), f"{name}: {key}"
        assert "DATABASE_URL" not in environment, f"{name}: the URL holds a password"


def test_the_proxy_terminates_tls_in_front_of_both_web_processes(
    compose: dict[str, Any],
) -> None:
    caddy = CADDYFILE.read_text()
    assert re.search(r"reverse_proxy\s+web1:8000\s+web2:8000", caddy)
    assert "respond @metrics 404" in caddy
    ports = compose["services"]["caddy"]["ports"]
    assert "443:443" in ports
    for web in ("web1", "web2"):
        service = compose["services"][web]
        assert "ports" not in service, f"{web} is reached through the proxy only"
        assert "uvicorn callbot.asgi:application" in service["command"]
        assert "--proxy-headers" in service["command"]


def _production_environment(compose: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """The web service's environment with its secret files written."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "DJANGO_"))
    }
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"):
        env.pop(key, None)
    for key, value in compose["services"]["web1"]["environment"].items():
        value = re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(value))
        if key.endswith("_FILE"):
            path = tmp_path / key
            contents = {
                "DATABASE_URL_FILE": "postgres://callbot:pw@postgres:5432/callbot",
                "AUDIT_SIGNING_KEY_FILE": secrets.token_hex(32),
            }.get(key, secrets.token_urlsafe(50))
            path.write_text(contents + "\n")
            value = str(path)
        env[key] = value
    env["CALLBOT_VAR_DIR"] = str(tmp_path / "var")
    env["DJANGO_SETTINGS_MODULE"] = "callbot.settings"
    return env


def test_check_deploy_is_clean_under_the_compose_settings(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_environment(compose, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize("web", ["web1", "web2"])
def test_the_web_health_check_is_answered_not_refused_for_its_host(
    compose: dict[str, Any], tmp_path: Path, web: str
) -> None:
    """The container's own health check asks ``/healthz`` by its loopback address;
    a Host outside ALLOWED_HOSTS is answered 400 whatever the health, so the
    process would never count as healthy and the proxy would wait for it forever.
    (Here the database is not reachable: 503 is an answer, 400 is not.)"""
    probe = " ".join(compose["services"][web]["healthcheck"]["test"])
    url = re.search(r"http://[^'\"]+/healthz", probe)
    assert url is not None, probe
    host = url.group(0).removeprefix("http://").removesuffix("/healthz")
    script = (
        "import django; django.setup(); from django.test import Client; "
        f"print(Client().get('/healthz', HTTP_HOST={host!r}).status_code)"
    )
    env = _production_environment(compose, tmp_path)
    env.update(
        {
            k: v
            for k, v in compose["services"][web]["environment"].items()
            if "_FILE" not in k
        }
    )
    env = {k: re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", str(v)) for k, v in env.items()}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] in {"200", "503"}, done.stdout


def test_the_secret_files_are_readable_by_the_containers_user(tmp_path: Path) -> None:
    """Compose (outside Swarm) bind-mounts a secret file as it is on the host, owner
    and mode included, and ignores ``uid``/``mode``: the image's ``callbot`` user is
    not the host user who ran the script, so a 0600 file is unreadable in the
    container and web1 stops at SECRET_KEY_FILE. The files are world-readable and
    the directory holding them is the owner's alone (0700) on the host."""
    docker = tmp_path / "docker"
    (docker / "secrets").mkdir(parents=True)
    script = docker / "make-secrets.sh"
    script.write_text((ROOT / "docker" / "make-secrets.sh").read_text())
    # A secret written by hand under a strict umask, before the script runs.
    kept = docker / "secrets" / "graph_client_secret"
    kept.write_text("from-entra-id\n")
    kept.chmod(0o600)
    done = subprocess.run(
        ["sh", str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    secrets_dir = docker / "secrets"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    compose_secrets = yaml.safe_load(COMPOSE.read_text())["secrets"]
    for name, spec in compose_secrets.items():
        path = docker / spec["file"].removeprefix("./")
        assert path.is_file(), name
        assert path.stat().st_mode & 0o777 == 0o644, name
    assert kept.read_text() == "from-entra-id\n"
