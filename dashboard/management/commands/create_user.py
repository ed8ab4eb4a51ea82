"""``manage.py create_user NAME --role supervisor``: a dashboard user with one role.

The password comes from ``--password-stdin`` (scripts), an interactive prompt, or,
when neither is possible, is generated and printed once.
"""

from __future__ import annotations

import getpass
import secrets
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from dashboard.permissions import Role
from dashboard.roles import RoleMissingError, upsert_user


class Command(BaseCommand):
    help = (
        "Create (or update) a dashboard user with a role: admin, supervisor or auditor."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--role",
            required=True,
            choices=[r.value.lower() for r in Role],
            help="admin: everything; supervisor: acts on calls; auditor: reads only",
        )
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        role = Role(options["role"].capitalize())
        generated = False
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        elif sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords do not match")
        else:
            password, generated = secrets.token_urlsafe(12), True
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        try:
            user, created = upsert_user(
                options["username"], role, password=password, email=options["email"]
            )
        except RoleMissingError as exc:
            raise CommandError(str(exc)) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {user.get_username()} ({role.value})")
        if generated:
            self.stdout.write(f"Password: {password}")
