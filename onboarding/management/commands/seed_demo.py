"""Seed the demo: a partner admin, a read-only member and a support user (passwords printed), and tenants
connected to the sandbox scenarios. Idempotent: running it again resets the demo passwords and connections."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...connections import save_connection
from ...models import CheckRun, CompanyChoice, Membership, Tenant, User
from ...runs import start_run

SCENARIOS = Path(settings.BASE_DIR) / "connectwise" / "sandbox" / "scenarios"
DEMO_PASSWORD = "demo-password-2026"  # development only: the demo prints it; production never seeds.

TENANTS = [
    # slug, name, scenario file, whose admin. Each tenant is named like the sandbox company it is connected to
    # (acme "Acme MSP", brokenco "Broken MSP", bareco "Bare MSP"), so the demo never mixes them up.
    ("acme-msp", "Acme MSP", "healthy.json", "admin@acme.example"),
    ("broken-msp", "Broken MSP", "broken.json", "admin@broken.example"),
    ("bare-msp", "Bare MSP", "bare.json", "admin@bare.example"),
]


class Command(BaseCommand):
    help = "Seed demo logins and tenants connected to the sandbox (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--no-checks", action="store_true", help="Do not queue the first checks.")

    def handle(self, *args, no_checks=False, **options):
        if settings.PRODUCTION:
            raise CommandError("seed_demo is for development only")
        if not settings.CONNECTWISE_SANDBOX_URL:
            raise CommandError(
                "Set CONNECTWISE_SANDBOX_URL (make demo does) so that the demo tenants can connect."
            )
        sandbox_site = settings.CONNECTWISE_SANDBOX_URL.split("://", 1)[1]
        lines = []
        with transaction.atomic():
            support = self._user("support@distributor.example", "Sam", "Support", is_support=True)
            lines.append(("Support staff", support.email))
            for slug, name, scenario_file, admin_email in TENANTS:
                scenario = json.loads((SCENARIOS / scenario_file).read_text())
                member = scenario["apiMembers"][0]
                tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name})
                admin = self._user(admin_email, "Pat", name.split()[0])
                Membership.objects.update_or_create(
                    tenant=tenant, user=admin, defaults={"role": Membership.Role.ADMIN}
                )
                save_connection(
                    tenant,
                    site=sandbox_site,
                    company_id=scenario["company"]["id"],
                    public_key=member["publicKey"],
                    private_key=member["privateKey"],
                    actor="demo seed",
                )
                if scenario_file == "healthy.json":
                    # Acme has chosen its customers: the demo shows one tenant that is ready.
                    for company in scenario["records"]["company/companies"]:
                        motion = {"LitwareInc": "annual", "FabrikamInc": "azure"}.get(
                            company["identifier"], "monthly"
                        )
                        CompanyChoice.objects.update_or_create(
                            tenant=tenant,
                            cw_company_id=company["id"],
                            defaults={
                                "identifier": company["identifier"],
                                "name": company["name"],
                                "motion": motion,
                            },
                        )
                lines.append((f"Partner admin, {name}", admin.email))
            viewer = self._user("viewer@broken.example", "Vic", "Viewer")
            Membership.objects.update_or_create(
                tenant=Tenant.objects.get(slug="broken-msp"),
                user=viewer,
                defaults={"role": Membership.Role.MEMBER},
            )
            lines.append(("Read-only member, Broken MSP", viewer.email))
        if not no_checks:
            for slug, *_ in TENANTS:
                start_run(Tenant.objects.get(slug=slug), trigger=CheckRun.Trigger.SCHEDULE)
        width = max(len(label) for label, _ in lines)
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD})")
        for label, email in lines:
            self.stdout.write(f"  {label:<{width}}  {email}")

    def _user(self, email, first, last, is_support=False) -> User:
        user, _ = User.objects.get_or_create(username=email, defaults={"email": email})
        user.email, user.first_name, user.last_name, user.is_support = email, first, last, is_support
        user.set_password(DEMO_PASSWORD)
        user.save()
        return user
