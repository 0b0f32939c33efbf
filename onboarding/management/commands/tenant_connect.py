"""Create the tenant if needed and set its ConnectWise connection. The private key comes from CW_PRIVATE_KEY or a
prompt, never from argv (argv is visible to every user of the machine and lands in shell history)."""

from __future__ import annotations

import getpass
import os
import sys

from django import forms
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug

from ...connections import ConnectionRefused, save_connection
from ...inputs import validate_name
from ...models import Tenant


class Command(BaseCommand):
    help = "Create a tenant if needed and set its ConnectWise connection (private key from CW_PRIVATE_KEY or a prompt)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--site", required=True, help="ConnectWise API host, e.g. api-na.myconnectwise.net"
        )
        parser.add_argument("--company", required=True, help="ConnectWise company ID")
        parser.add_argument("--public-key", required=True)
        parser.add_argument("--name", help="Tenant display name when it is created (default: the slug)")

    def handle(self, *args, slug, site, company, public_key, name=None, **options):
        slug, name = _checked_slug_and_name(slug, name)
        private_key = os.environ.get("CW_PRIVATE_KEY")
        if not private_key:
            if not sys.stdin.isatty():
                raise CommandError(
                    "Set CW_PRIVATE_KEY or run interactively to be prompted for the private key."
                )
            private_key = getpass.getpass("ConnectWise private key: ")
        if not private_key.strip():
            raise CommandError("The private key is empty.")
        tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
        try:
            connection, replaced = save_connection(
                tenant,
                site=site,
                company_id=company,
                public_key=public_key,
                private_key=private_key,
                actor="operator (command line)",
            )
        except ConnectionRefused as exc:
            if created:
                tenant.delete()
            raise CommandError(f"Connection refused: {exc}") from None
        self.stdout.write(
            f"{'Created' if created else 'Updated'} tenant {tenant.slug}: company {connection.company_id} at "
            f"{connection.site} (private key stored encrypted, {connection.private_key_masked})."
        )


def _checked_slug_and_name(slug: str, name: str | None) -> tuple[str, str | None]:
    """The same rules as sign-up: a slug of letters, digits and hyphens (at most 60), a name without control
    characters (at most 200). Raises ``CommandError`` before anything is saved."""
    try:
        validate_slug(slug)
    except forms.ValidationError:
        raise CommandError(f"{slug!r} is not a slug: use letters, digits and hyphens only.") from None
    if len(slug) > 60:
        raise CommandError("The slug is longer than 60 characters.")
    if name is None:
        return slug, None
    try:
        name = validate_name(name, what="The tenant name")
    except forms.ValidationError as exc:
        raise CommandError(exc.messages[0]) from None
    if not name or len(name) > 200:
        raise CommandError("The tenant name must be 1 to 200 characters.")
    return slug, name
