"""Emulator configuration: the known bot app, timers, delivery and fault defaults.

One frozen-ish dataclass (``EmulatorConfig``) that the app factory takes, plus a reader
for ``EMULATOR_*`` environment variables. Timers are in *virtual* seconds (see
``clock.py``): a scenario run with ``speed`` > 1 shrinks them all at once.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TENANT_ID = "c1a7e3d2-5b4f-4e6a-8d9c-0f1e2d3c4b5a"
DEFAULT_CLIENT_ID = "6d2f0c7e-1b7a-4a57-9a43-2c9e8a1f5b10"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"  # noqa: S105 (a public test value)
DEFAULT_BOT_WEBHOOK = "http://127.0.0.1:8000/api/calling/callback"

# Contract §1.3. ``Calls.JoinGroupCalls.Chat`` is resource-specific consent, not an
# application permission a client-credentials token carries, so it is left out.
ALL_CALLS_PERMISSIONS = (
    "Calls.Initiate.All",
    "Calls.InitiateGroupCall.All",
    "Calls.JoinGroupCall.All",
    "Calls.JoinGroupCallAsGuest.All",
    "Calls.AccessMedia.All",
)
DEFAULT_PERMISSIONS = (*ALL_CALLS_PERMISSIONS, "OnlineMeetings.ReadWrite.All")

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BotApp:
    """The one registered bot application the emulator knows (contract §1.2, §1.3).

    ``permissions`` become the token's ``roles``; the Graph endpoints check them, so
    dropping one (say ``Calls.InitiateGroupCall.All``) makes the matching calls 403.
    ``webhook`` is the calling webhook registered on the Azure Bot resource: where
    brand-new incoming calls are announced.
    """

    tenant_id: str = DEFAULT_TENANT_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    display_name: str = "Callbot"
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS
    webhook: str = DEFAULT_BOT_WEBHOOK
    # The resource account linked to the app: needed as ``source`` for PSTN calls and
    # shown as the target of calls made to the bot's phone number (contract §7.4).
    instance_id: str = "3b9e4c1a-7d2f-4e8b-9a6c-5f0d1e2c3b4a"
    instance_phone: str = "+14255550199"


@dataclass
class EmulatorConfig:
    """Everything the emulator needs; every field has a working default."""

    host: str = "127.0.0.1"
    port: int = 8443
    state_dir: Path = field(default_factory=lambda: REPO_ROOT / "var" / "emulator")
    # Public origin written into metadata, Location headers and recording URLs. Empty:
    # derived from each request's own scheme and host.
    public_url: str = ""
    bot: BotApp = field(default_factory=BotApp)
    # Timers, in virtual seconds (contract §12).
    answer_timeout: float = 15.0
    keepalive_timeout: float = 45 * 60.0
    setup_delay: float = 0.05
    callee_answer_delay: float = 0.2
    media_seconds: float = 0.2
    transfer_delay: float = 0.1
    recording_retention: float = 300.0
    # Lifetime of the access tokens the token endpoint issues, in real seconds
    # (Entra ID's are about an hour); shorter ones let a bot's refresh be tested.
    token_lifetime: float = 3600.0
    # Delivery (delivery.py).
    batch_max: int = 50
    max_in_flight_per_callback: int = 4
    retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)
    delivery_timeout: float = 10.0
    webhook_ca: str = ""
    # Faults switched on for the whole run (faults.py; same shape as the control API).
    faults: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    speed: float = 1.0
    # Scenario started at boot by ``python -m callbot.simulator --scenario``.
    scenario: str = ""


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EMULATOR_{name}", default)


def config_from_env() -> EmulatorConfig:
    """Build a config from ``EMULATOR_*`` variables; unset ones keep the defaults.

    Raises ``ValueError`` naming the variable when a value does not parse, so a typo
    fails at start-up rather than as a strange call later.
    """
    bot = BotApp()
    bot.tenant_id = _env("TENANT_ID", bot.tenant_id)
    bot.client_id = _env("CLIENT_ID", bot.client_id)
    bot.client_secret = _env("CLIENT_SECRET", bot.client_secret)
    bot.display_name = _env("BOT_NAME", bot.display_name)
    bot.webhook = _env("BOT_WEBHOOK", bot.webhook)
    permissions = _env("PERMISSIONS", "")
    if permissions:
        bot.permissions = tuple(p.strip() for p in permissions.split(",") if p.strip())
    config = EmulatorConfig(bot=bot)
    config.host = _env("HOST", config.host)
    config.public_url = _env("PUBLIC_URL", config.public_url)
    config.state_dir = Path(_env("STATE_DIR", str(config.state_dir)))
    config.webhook_ca = _env("WEBHOOK_CA", config.webhook_ca)
    config.scenario = _env("SCENARIO", config.scenario)
    for name, attr in (
        ("PORT", "port"),
        ("SEED", "seed"),
        ("BATCH_MAX", "batch_max"),
        ("MAX_IN_FLIGHT", "max_in_flight_per_callback"),
    ):
        raw = os.environ.get(f"EMULATOR_{name}")
        if raw:
            try:
                setattr(config, attr, int(raw))
            except ValueError as exc:
                raise ValueError(
                    f"EMULATOR_{name} must be an integer: {raw!r}"
                ) from exc
    for name, attr in (
        ("SPEED", "speed"),
        ("ANSWER_TIMEOUT", "answer_timeout"),
        ("KEEPALIVE_TIMEOUT", "keepalive_timeout"),
        ("MEDIA_SECONDS", "media_seconds"),
        ("TOKEN_LIFETIME", "token_lifetime"),
    ):
        raw = os.environ.get(f"EMULATOR_{name}")
        if raw:
            try:
                setattr(config, attr, float(raw))
            except ValueError as exc:
                raise ValueError(f"EMULATOR_{name} must be a number: {raw!r}") from exc
    raw_faults = os.environ.get("EMULATOR_FAULTS")
    if raw_faults:
        try:
            config.faults = json.loads(raw_faults)
        except ValueError as exc:
            raise ValueError("EMULATOR_FAULTS must be a JSON object") from exc
    return config
