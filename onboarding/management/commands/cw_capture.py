"""Read a partner's ConnectWise, read-only, into a scenario file the sandbox serves (connectwise.capture).

    python manage.py cw_capture SLUG --out FILE [--anonymize]
    CW_PRIVATE_KEY=... python manage.py cw_capture --site HOST --company ID --public-key KEY --out FILE

The keys are never written: the scenario gets a placeholder API member with fresh keys, printed so that the
capture can be connected to (``cw_sandbox --scenario FILE``, then ``tenant_connect``). The client is built in the
one place clients are built (``onboarding.cw.client_for``), behind the same host guard as the wizard.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from connectwise.capture import CaptureError, capture
from connectwise.capture import anonymize as anonymize_scenario
from connectwise.sandbox.scenario import ScenarioError, parse_scenario

from ...cw import client_for
from ...models import Connection
from ._common import allowed_or_exit, get_tenant


class Command(BaseCommand):
    help = (
        "Capture a tenant's ConnectWise (read-only, every resource the checks read) into a sandbox scenario file; "
        "keys are never written. SLUG, or --site/--company/--public-key with the private key in CW_PRIVATE_KEY."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="A tenant with a saved connection")
        parser.add_argument("--out", required=True, help="Scenario file to write (JSON)")
        parser.add_argument(
            "--anonymize",
            action="store_true",
            help="Replace company, contact and agreement names and identifiers consistently",
        )
        parser.add_argument("--site", help="ConnectWise API host (instead of SLUG)")
        parser.add_argument("--company", help="ConnectWise company ID (with --site)")
        parser.add_argument("--public-key", help="API member public key (with --site)")
        parser.add_argument("--force", action="store_true", help="Overwrite --out when it exists")

    def handle(
        self,
        *args,
        slug=None,
        out,
        anonymize=False,
        site=None,
        company=None,
        public_key=None,
        force=False,
        **options,
    ):
        target = Path(out)
        if target.exists() and not force:
            raise CommandError(f"{target} exists; pass --force to overwrite it.")
        if not target.parent.is_dir():
            raise CommandError(f"The folder {target.parent} does not exist.")
        connection = self._connection(slug, site, company, public_key)
        decision = allowed_or_exit(connection)

        def progress(path: str, n: int) -> None:
            note = "refused (403): the role may not read it" if n < 0 else f"{n} record{'s' * (n != 1)}"
            self.stderr.write(f"  read {path}: {note}")

        try:
            with client_for(connection, decision) as client:
                scenario = capture(client, connection.company_id, on_read=progress)
                calls = client.stats
        except CaptureError as exc:
            raise CommandError(str(exc)) from None
        if anonymize:
            scenario = anonymize_scenario(scenario)
        try:
            parse_scenario(scenario)  # what we write, the sandbox must serve
        except ScenarioError as exc:
            raise CommandError(
                f"The capture is not a valid scenario ({exc}); nothing was written. A record that refers to one "
                'the API member may not see (an Inquire level "My") cannot be served as it is.'
            ) from None
        target.write_text(json.dumps(scenario, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        member = scenario["apiMembers"][0]
        written = {k: len(v) for k, v in scenario["records"].items()}
        self.stdout.write(
            f"Wrote {target}: {sum(written.values())} records from {len(written)} collections in {calls.calls} "
            f"read-only API calls{' (anonymized)' if anonymize else ''}. Your keys are not in it.\n"
            f"Serve it:   python manage.py cw_sandbox --port 8765 --scenario {target}\n"
            f"Connect to it with the placeholder API member: company {scenario['company']['id']}, "
            f"public key {member['publicKey']}, private key {member['privateKey']}"
        )

    def _connection(self, slug, site, company, public_key) -> Connection:
        direct = [site, company, public_key]
        if slug and any(direct):
            raise CommandError("Give either SLUG or --site/--company/--public-key, not both.")
        if slug:
            connection = getattr(get_tenant(slug), "connection", None)
            if connection is None:
                raise CommandError(f"Tenant {slug} has no ConnectWise connection; save one first.")
            return connection
        if not all(direct):
            raise CommandError("Give SLUG, or all of --site, --company and --public-key.")
        private_key = os.environ.get("CW_PRIVATE_KEY", "")
        if not private_key.strip():
            raise CommandError(
                "Set CW_PRIVATE_KEY to the API member's private key (never on the command line)."
            )
        connection = Connection(site=site.strip(), company_id=company.strip(), public_key=public_key.strip())
        connection.set_private_key(private_key)  # in memory only: this connection is never saved
        return connection
