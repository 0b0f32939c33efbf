"""Build repair plans; without --yes print them and change nothing; with --yes approve them as the operator,
apply them, re-verify and print the new run like verify_tenant.

``--step existing_billing --cutover YYYY-MM-DD`` ends every flagged agreement addition at the cutover (the tenant's
cutover is stored, audited, with --yes); that step is repaired only when named, since it changes what is billed."""

from __future__ import annotations

import json
import json as jsonlib
from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from connectwise.checks import agreement_defaults
from connectwise.checks import plans as cw_plans
from connectwise.checks.agreements import agreement_type_options
from connectwise.errors import ConnectWiseError

from ... import billing, repairs
from ...cw import choices_for, client_for
from ...models import CheckRun, RepairPlan
from ...runs import RunInProgress, run_now
from ._common import check_steps, connect_or_exit, get_tenant
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
        parser.add_argument(
            "--defaults",
            metavar="FILE",
            help='Set the defaults for new agreements first: JSON like {"monthly": {"type": "O365", "name": '
            '"{company} - Microsoft 365", "start": "2026-12-01"}, "azure": {...}, "annual": {...}}.',
        )

    def handle(self, *args, slug, steps=None, yes=False, json=False, cutover=None, defaults=None, **options):
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
        connection, decision = connect_or_exit(tenant)
        if defaults:
            defaults = self._load_defaults(tenant, connection, decision, defaults)
            if yes:
                tenant.set_agreement_defaults(defaults, actor=OPERATOR)
            if not json:
                for row in agreement_defaults.describe(defaults):
                    self.stdout.write(f'defaults {row["motion"]}: type {row["type"]}, name "{row["name"]}"')
        if not steps:
            # Issue 18: without --step, one combined plan across the repairable steps (dependency order).
            wanted = [cw_plans.COMBINED]
        if not yes:
            self._preview(tenant, connection, decision, wanted, as_json=json, cutover=day, defaults=defaults)
            return
        if day is not None:
            billing.set_cutover(tenant, day, actor=OPERATOR)
        applied = []
        for step in wanted:
            try:
                plan = repairs.create_plan(tenant, step, actor=None)
            except (ConnectWiseError, repairs.PlanError) as exc:
                raise CommandError(f"Could not build the {step} plan: {exc}") from None
            if not json:
                for item in getattr(plan, "skipped", []):
                    self._write_skipped(item.get("step", step), [item])
            if not plan.operations.exists():
                RepairPlan.objects.filter(pk=plan.pk).update(status=RepairPlan.Status.DISCARDED)
                continue
            try:
                repairs.approve(plan, by=OPERATOR)
            except repairs.PlanError as exc:  # a plan approved on the web is being applied right now
                raise CommandError(f"Could not apply the {step} plan: {exc}") from None
            plan = repairs.claim_for_apply(plan.pk)
            plan = repairs.apply(plan, verify=False, actor=OPERATOR)
            applied.append(plan)
            if not json:
                what = "every repairable step" if step == cw_plans.COMBINED else step
                self.stdout.write(f"Applied {plan.operations.count()} change(s) for {what}: {plan.status}")
            if plan.status == RepairPlan.Status.FAILED:
                self.stderr.write(f"The {step} plan failed: {plan.error}")
        try:
            run = run_now(tenant, trigger=CheckRun.Trigger.REPAIR, steps=[])
        except RunInProgress as exc:
            raise CommandError(str(exc)) from None
        print_run(self, run, as_json=json)
        if any(p.status == RepairPlan.Status.FAILED for p in applied):
            raise CommandError("At least one change failed; see the plan's operations.")

    def _preview(self, tenant, connection, decision, wanted, *, as_json, cutover=None, defaults=None):
        out = []
        choices = choices_for(tenant)
        if defaults is not None:  # like the cutover: used for the preview, stored only with --yes
            choices = replace(choices, agreement_defaults=defaults)
        if cutover is not None:  # shown, not stored: nothing changes without --yes
            choices = replace(choices, cutover=cutover)
        with client_for(connection, decision) as client:
            for step in wanted:
                try:
                    if step == cw_plans.COMBINED:
                        report = cw_plans.build_combined_report(client, choices)
                    else:
                        report = cw_plans.build_plan_report(client, choices, step)
                except ConnectWiseError as exc:
                    raise CommandError(f"Could not build the {step} plan: {exc}") from None
                operations = [
                    {**op.to_dict(), "seq": seq} for seq, op in enumerate(report.operations, start=1)
                ]
                if step != cw_plans.COMBINED:
                    out.append({"step": step, "operations": operations, "not_repaired": report.skipped})
                    continue
                # One plan (one approval), printed per step in dependency order; "seq" is the position in the
                # combined plan, which {"$ref": seq} placeholders name.
                for key in cw_plans.combined_steps(choices):
                    out.append(
                        {
                            "step": key,
                            "combined": True,
                            "operations": [op for op in operations if op.get("step") == key],
                            "not_repaired": [s for s in report.skipped if s.get("step") == key],
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

    def _load_defaults(self, tenant, connection, decision, path: str) -> dict:
        """The defaults file validated against the tenant's agreement types and the role's Access Allowed list
        (read from ConnectWise now). Refused as a whole, with every reason, before anything is applied."""
        try:
            with open(path, encoding="utf-8") as f:
                raw = jsonlib.load(f)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from None
        with client_for(connection, decision) as client:
            try:
                options = agreement_type_options(client, choices_for(tenant))
            except ConnectWiseError as exc:
                raise CommandError(f"Could not read the agreement types: {exc}") from None
        try:
            clean = agreement_defaults.validate(raw, options)
        except agreement_defaults.DefaultsError as exc:
            raise CommandError(
                "The defaults were refused; nothing was applied:\n  " + "\n  ".join(exc.problems)
            ) from None
        return clean
