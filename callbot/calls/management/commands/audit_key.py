"""``manage.py audit_key``: the audit signing key's public half, or a new key.

``--public`` prints the PEM public key that ``verify_audit --public-key`` takes
(on the embedded default this makes the key on first use); with
``--with-previous`` also those of ``AUDIT_PREVIOUS_PUBLIC_KEYS`` (the file an
auditor needs to verify across rotations). ``--generate`` prints a fresh private
key for ``AUDIT_SIGNING_KEY`` and stores nothing (rotation: docs/audit.md).
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
        parser.add_argument(
            "--with-previous",
            action="store_true",
            help="with --public: also the previous keys (AUDIT_PREVIOUS_PUBLIC_KEYS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            self.stdout.write(auditseal.new_private_pem(), ending="")
            return
        try:
            key = auditseal.signing_key().public_key()
            keys = [key]
            if options["with_previous"]:
                keys += auditseal.previous_public_keys()
        except auditseal.AuditKeyError as exc:
            raise CommandError(str(exc)) from None
        for each in keys:
            self.stdout.write(auditseal.public_pem(each), ending="")
            self.stderr.write(f"key id {auditseal.key_id(each)}")
