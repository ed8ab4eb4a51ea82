"""``manage.py audit_key``: the audit signing key's public half, or a new key.

``--public`` prints the PEM public key that ``verify_audit --public-key`` takes
(on the embedded default this makes the key on first use); ``--generate``
prints a fresh private key for ``AUDIT_SIGNING_KEY`` and stores nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbot.calls import auditseal


class Command(BaseCommand):
    help = "Print the audit signing key's public key, or generate a new key."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--public", action="store_true")
        group.add_argument("--generate", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            self.stdout.write(auditseal.new_private_pem(), ending="")
            return
        try:
            key = auditseal.signing_key().public_key()
        except auditseal.AuditKeyError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(auditseal.public_pem(key), ending="")
        self.stderr.write(f"key id {auditseal.key_id(key)}")
