"""Build repair plans; without --yes print them and change nothing; with --yes approve them as the operator,
apply them, re-verify and print the new run like verify_tenant.

``--step existing_billing --cutover YYYY-MM-DD`` ends every flagged agreement addition at the cutover (the tenant's
cutover is stored, audited, with --yes); that step is repaired only when named, since it changes what is billed."""

from __future__ import annotations

import json
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from connectwise.checks import plans as cw_plans
from connectwise.errors import ConnectWiseError

from ... import billing, repairs
from ...cw import choices_for, client_for
from ...hosts import decide
from ...models import CheckRun, RepairPlan
from ...runs import RunInProgress, run_now
from ._common import check_steps, get_tenant
from .verify_tenant import print_run

# Order matters: the catalog's misc product needs the setup-table records that the setup_tables plan creates.
REPAIRABLE_STEPS = ("setup_tables", "catalog", "agreements", "existing_billing")
ONLY_WHEN_NAMED = ("existing_billing",)
OPERATOR = "operator (command line)"


class Command(BaseCommand):
    help = "Build repair plans (print only), or with --yes approve, apply and re-verify."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--step", action="append", dest="steps", metavar="KEY")
        parser.add_argument("--yes", action="store_true", help="Approve and apply the plans as the operator.")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--cutover",
            metavar="YYYY-MM-DD",
            help="existing_billing: the last day existing additions bill (default: the end of the current month).",
        )

    def handle(self, *args, slug, steps=None, yes=False, json=False, cutover=None, **options):
        tenant = get_tenant(slug)
        steps = check_steps(steps)
        wanted = [s for s in REPAIRABLE_STEPS if (not steps and s not in ONLY_WHEN_NAMED) or s in steps]
        day = None
        if cutover is not None:
            if "existing_billing" not in wanted:
                raise CommandError("--cutover goes with --step existing_billing.")
            try:
                day = billing.parse_cutover(cutover)
            except billing.CutoverError as exc:
                raise CommandError(str(exc)) from None
        connection = getattr(tenant, "connection", None)
        if connection is None:
            raise CommandError(f"Tenant {slug} has no connection; run tenant_connect first.")
        decision = decide(connection.site)
        if not decision.allowed:
            raise CommandError(f"Connection refused: {decision.refused}")
        if not yes:
            self._preview(tenant, connection, decision, wanted, as_json=json, cutover=day)
            return
        if day is not None:
            billing.set_cutover(tenant, day, actor=OPERATOR)
        applied = []
        for step in wanted:
            try:
                plan = repairs.build_plan(tenant, step, actor=None)
            except (ConnectWiseError, repairs.PlanError) as exc:
                raise CommandError(f"Could not build the {step} plan: {exc}") from None
            if not json:
                self._write_skipped(step, getattr(plan, "skipped", []))
            if not plan.operations.exists():
                RepairPlan.objects.filter(pk=plan.pk).update(status=RepairPlan.Status.DISCARDED)
                continue
            repairs.approve(plan, by=OPERATOR)
            plan = repairs.claim_for_apply(plan.pk)
            plan = repairs.apply(plan, verify=False, actor=OPERATOR)
            applied.append(plan)
            if not json:
                self.stdout.write(f"Applied {plan.operations.count()} change(s) for {step}: {plan.status}")
            if plan.status == RepairPlan.Status.FAILED:
                self.stderr.write(f"The {step} plan failed: {plan.error}")
        try:
            run = run_now(tenant, trigger=CheckRun.Trigger.REPAIR, steps=[])
        except RunInProgress as exc:
            raise CommandError(str(exc)) from None
        print_run(self, run, as_json=json)
        if any(p.status == RepairPlan.Status.FAILED for p in applied):
            raise CommandError("At least one change failed; see the plan's operations.")

    def _preview(self, tenant, connection, decision, wanted, *, as_json, cutover=None):
        out = []
        choices = choices_for(tenant)
        if cutover is not None:  # shown, not stored: nothing changes without --yes
            choices = replace(choices, cutover=cutover)
        with client_for(connection, decision) as client:
            for step in wanted:
                try:
                    report = cw_plans.build_plan_report(client, choices, step)
                except ConnectWiseError as exc:
                    raise CommandError(f"Could not build the {step} plan: {exc}") from None
                out.append(
                    {
                        "step": step,
                        "operations": [op.to_dict() for op in report.operations],
                        "not_repaired": report.skipped,
                    }
                )
        if as_json:
            self.stdout.write(json.dumps({"tenant": tenant.slug, "applied": False, "plans": out}, indent=2))
            return
        for plan in out:
            self.stdout.write(f"{plan['step']}: {len(plan['operations'])} change(s)")
            for op in plan["operations"]:
                self.stdout.write(f"  {op['method']:<6} {op['path']:<40} {op['description']}")
            self._write_skipped(plan["step"], plan["not_repaired"])
        self.stdout.write("Nothing was changed. Run again with --yes to approve and apply these changes.")

    def _write_skipped(self, step: str, skipped: list[dict]) -> None:
        """A finding that could be repaired but is not, with the reason: never a silent "0 change(s)"."""
        for item in skipped:
            self.stdout.write(f"  not repaired: {item['subject']} ({item['code']}): {item['reason']}")
