"""Run the checks for a tenant through the same code as the background job, store the run, print it."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from connectwise.errors import detail_text

from ...models import CheckRun
from ...results import run_as_dict
from ...runs import RunInProgress, run_now
from ._common import check_steps, get_tenant


class Command(BaseCommand):
    help = "Verify a tenant's ConnectWise (all steps, or --step KEY ...); --json prints the stored run."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--step", action="append", dest="steps", metavar="KEY")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, slug, steps=None, json=False, **options):
        tenant = get_tenant(slug)
        try:
            run = run_now(tenant, trigger=CheckRun.Trigger.CLI, steps=check_steps(steps))
        except RunInProgress as exc:
            raise CommandError(str(exc)) from None
        print_run(self, run, as_json=json)
        if run.status == CheckRun.Status.ERROR:
            raise CommandError(f"The run ended in error: {run.error}")


def print_run(command: BaseCommand, run: CheckRun, *, as_json: bool) -> None:
    data = run_as_dict(run)
    if as_json:
        command.stdout.write(json.dumps(data, indent=2))
        return
    command.stdout.write(
        f"Tenant {data['tenant']}  run {data['run']}  {'READY' if data['ready'] else 'not ready'}  "
        f"{data['api_calls']} API calls  {data['duration_ms'] or 0} ms"
    )
    for step in data["steps"]:
        command.stdout.write(f"  {step['key']:<14} {step['status']:<8} {step['summary']}")
        for f in step["findings"]:
            fix = " [repairable]" if f["repairable"] else ""
            command.stdout.write(f"      {f['severity']:<8} {f['code']:<45} {f['subject']}{fix}")
            if f.get("error"):
                command.stdout.write(f"               ConnectWise: {detail_text(f['error'])}")
    if data.get("error"):
        command.stdout.write(f"  run error: {data['error']}")
