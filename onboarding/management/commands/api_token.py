"""``python manage.py api_token create NAME --scope read|read+verify [--expires DAYS]`` prints the secret once;
``api_token list`` and ``api_token revoke NAME``. The same rules and audit trail as the support page."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ...api import tokens
from ...api.models import ApiToken

ACTOR = "operator (command line)"


class Command(BaseCommand):
    help = "Create, list or revoke API tokens for the billing sync."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print its secret once.")
        create.add_argument("name")
        create.add_argument("--scope", choices=ApiToken.Scope.values, default=ApiToken.Scope.READ)
        create.add_argument(
            "--expires", type=int, metavar="DAYS", help="Days until it expires (default: never)."
        )
        sub.add_parser("list", help="List tokens (never their secrets).")
        revoke = sub.add_parser("revoke", help="Revoke a token by name.")
        revoke.add_argument("name")

    def handle(self, *args, action, **options):
        if action == "create":
            try:
                token, secret = tokens.create(
                    options["name"], options["scope"], expires_days=options.get("expires"), by=ACTOR
                )
            except tokens.TokenError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Created API token {token.name!r} ({token.scope}).")
            self.stdout.write("Secret (shown once, store it now):")
            self.stdout.write(secret)
        elif action == "list":
            rows = list(ApiToken.objects.all())
            if not rows:
                self.stdout.write("No API tokens.")
            for t in rows:
                expires = t.expires_at.strftime("%Y-%m-%d") if t.expires_at else "never"
                used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
                self.stdout.write(
                    f"{t.name}\t{t.scope}\t{t.state}\t{t.prefix}…\texpires {expires}\tlast used {used}"
                )
        else:
            token = ApiToken.objects.filter(name=options["name"]).first()
            if token is None:
                raise CommandError(f"No API token named {options['name']!r}.")
            if not tokens.revoke(token, by=ACTOR):
                raise CommandError(f"API token {token.name!r} was already revoked.")
            self.stdout.write(f"Revoked API token {token.name!r}.")
