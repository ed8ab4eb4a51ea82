"""``manage.py api_token <username> [--name NAME] [--revoke]``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from callbot.api.tokens import create_token, revoke_tokens


class Command(BaseCommand):
    help = (
        "Make an API token for a user and print its key (shown this once), "
        "or with --revoke delete every token the user has."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for.")
        parser.add_argument(
            "--revoke", action="store_true", help="Delete the user's tokens."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        try:
            user = model.objects.get(**{model.USERNAME_FIELD: options["username"]})
        except model.DoesNotExist:
            raise CommandError(f"No user {options['username']!r}.") from None
        if options["revoke"]:
            count = revoke_tokens(user)
            self.stdout.write(f"Revoked {count} token(s) of {user.get_username()}.")
            return
        if not user.is_active:
            raise CommandError(f"{user.get_username()} is inactive.")
        token, key = create_token(user, name=options["name"])
        self.stderr.write(
            f"Token {token.prefix}… for {user.get_username()}; the key is shown "
            "this once:"
        )
        self.stdout.write(key)
