"""``manage.py verify_audit``: check the audit trail's hash chain and signed
checkpoints, in the database or in an exported file (offline, public key only).

Exits 0 with a summary when the trail is intact; otherwise names the first entry
edited, deleted, inserted or reordered (sequence and id) and exits 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbot.calls import auditseal, auditverify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain and signed checkpoints."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file", type=Path, help="an export (JSON Lines) to check instead"
        )
        parser.add_argument(
            "--public-key",
            type=Path,
            action="append",
            help="a file of PEM public keys (audit_key --public [--with-previous]); "
            "repeatable; each checkpoint is checked with the key it names. Default: "
            "this installation's signing key and AUDIT_PREVIOUS_PUBLIC_KEYS",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            public = (
                [
                    key
                    for path in options["public_key"]
                    for key in auditseal.load_publics(path.read_text())
                ]
                if options["public_key"]
                else auditseal.trusted_keys()
            )
            if options["file"]:
                with options["file"].open(encoding="utf-8") as lines:
                    report = auditverify.verify_file(lines, public)
            else:
                report = auditverify.verify_database(public)
        except (OSError, ValueError, auditseal.AuditKeyError) as exc:
            raise CommandError(str(exc), returncode=2) from None
        if not report.ok:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(report.summary())
