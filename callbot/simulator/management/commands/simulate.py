"""``manage.py simulate``: start a scenario on a running emulator and narrate it.

Talks to the emulator's control API over HTTPS (trusting its ``ca.pem``) and imports
nothing of Callbot's: only Django, for the command machinery and the settings that
say where the emulator is.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

import httpx

SCENARIO_NAMES = ("ivr-operator", "standup", "townhall", "burst", "mixed")
_FOREVER = 10.0 * 365 * 24 * 3600


class Command(BaseCommand):
    help = "Play people calling the bot, joining meetings and pressing keys, on the emulator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "scenario", nargs="?", default="mixed", choices=SCENARIO_NAMES
        )
        parser.add_argument(
            "--duration",
            type=float,
            default=None,
            help="virtual seconds (default: until Ctrl-C)",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--speed", type=float, default=1.0, help="> 1 fast-forwards virtual time"
        )
        parser.add_argument(
            "--emulator-url",
            default=getattr(settings, "EMULATOR_URL", "https://127.0.0.1:8443"),
        )
        parser.add_argument(
            "--ca",
            default=None,
            help="CA certificate to trust (default var/emulator/ca.pem)",
        )
        parser.add_argument(
            "--poll", type=float, default=0.5, help="seconds between event polls"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ca = options["ca"] or str(
            Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var"))
            / "emulator"
            / "ca.pem"
        )
        if not Path(ca).exists():
            raise CommandError(
                f"No emulator CA at {ca}: start it with `python -m callbot.simulator` first."
            )
        client = httpx.Client(
            base_url=options["emulator_url"].rstrip("/") + "/_emulator",
            verify=ssl.create_default_context(cafile=ca),
            timeout=10,
        )
        duration = options["duration"] or _FOREVER
        try:
            after = client.get("/events", params={"after": 0}).json()["last"]
            response = client.post(
                "/scenarios",
                json={
                    "name": options["scenario"],
                    "seed": options["seed"],
                    "duration": duration,
                    "speed": options["speed"],
                },
            )
        except httpx.HTTPError as exc:
            raise CommandError(
                f"Cannot reach the emulator at {options['emulator_url']}: {exc}"
            ) from exc
        if response.status_code != 201:
            raise CommandError(f"The emulator refused the scenario: {response.text}")
        run = response.json()
        self.stdout.write(
            f"scenario {run['name']} #{run['id']} started (seed {run['seed']}, speed {run['speed']:g})"
        )
        try:
            while True:
                events = client.get("/events", params={"after": after}).json()
                for event in events["value"]:
                    after = event["seq"]
                    self.stdout.write(
                        f"{event['time'][11:23]} {event['kind']:<8} {event['message']}"
                    )
                runs = {r["id"]: r for r in client.get("/scenarios").json()["value"]}
                if runs.get(run["id"], {}).get("status") != "running":
                    break
                time.sleep(options["poll"])
        except KeyboardInterrupt:
            client.delete(f"/scenarios/{run['id']}")
            self.stdout.write("stopped")
        stats = client.get("/stats").json()["notifications"]
        self.stdout.write(
            f"notifications: {stats['delivered']} delivered, {stats['failed']} failed, "
            f"{stats['posts']} POSTs, status counts {stats['statusCounts']}"
        )
        client.close()
