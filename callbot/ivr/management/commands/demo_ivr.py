"""``manage.py demo_ivr``: the demo prompts, "operator" flow and call policies.

With the emulator (no GRAPH_TENANT_ID) the demo policies are created switched on:
every simulated call is answered, peer-to-peer ones into the flow. On a real tenant
they would answer every real call and transfer to a made-up operator, so they are
created switched off, and the command says so in one line on stderr (exit status 0,
as ``make run`` calls it in every mode, like ``demo_users``). The database does not
matter here, unlike for ``demo_users``: the demo holds no secret.

Idempotent: it creates only what is missing (see ``callbot.ivr.demo``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from callbot.ivr.demo import FLOW_NAME, DemoCreated, install_demo


def _what(created: DemoCreated) -> str:
    parts: list[str] = []
    if created.prompts:
        parts.append(f"{created.prompts} prompts")
    if created.flow:
        parts.append(f'the "{FLOW_NAME}" flow')
    if created.policies:
        parts.append(f"{created.policies} call policies")
    return ", ".join(parts) or "nothing new"


class Command(BaseCommand):
    help = "Create the demo IVR prompts, flow and call policies that are missing."

    def handle(self, *args: Any, **options: Any) -> None:
        enabled = bool(settings.USE_EMULATOR)
        try:
            created = install_demo(enable_policies=enabled)
        except ValidationError as exc:
            raise CommandError(f"The demo IVR does not validate: {exc}") from None
        what = _what(created)
        if enabled:
            self.stdout.write(f"Demo IVR: created {what}.")
            return
        # Not an error: `make run` calls this in every mode and must go on.
        self.stderr.write(
            f"Demo IVR on a real tenant (GRAPH_TENANT_ID is set): created {what}; "
            "demo call policies are created switched off here (enable them in "
            "/admin/ivr/callpolicy/ if you want them)."
        )
