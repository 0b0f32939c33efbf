"""Preview what the first sync would write, from the distributor's subscription CSV (columns customer, product,
quantity, term, start date): the target agreement and addition per line, every collision with an existing addition,
and why a line cannot be placed. Reads ConnectWise, writes nothing there; the preview is stored for the web page."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from connectwise.preview import collision_text
from connectwise.subscriptions import SubscriptionCsvError

from ... import billing
from ...models import SyncPreview
from ._common import get_tenant

OPERATOR = "operator (command line)"


class Command(BaseCommand):
    help = (
        "Preview the first sync from a subscription CSV (nothing is written to ConnectWise); --json for JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", required=True, dest="csv_path", metavar="FILE")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, slug, csv_path, as_json=False, **options):
        tenant = get_tenant(slug)
        if getattr(tenant, "connection", None) is None:
            raise CommandError(f"Tenant {slug} has no connection; run tenant_connect first.")
        try:
            with open(csv_path, encoding="utf-8-sig") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {csv_path}: {exc}") from None
        try:
            preview = billing.create_preview(
                tenant, text, source_name=csv_path.rsplit("/", 1)[-1], actor=OPERATOR, enqueue=False
            )
        except SubscriptionCsvError as exc:
            raise CommandError("The subscription CSV was not used:\n  " + "\n  ".join(exc.problems)) from None
        preview = billing.execute_preview(preview)
        if preview.status != SyncPreview.Status.DONE:
            raise CommandError(f"The preview could not be built: {preview.error}")
        data = {
            "tenant": tenant.slug,
            "preview": str(preview.uuid),
            "cutover": str(preview.cutover) if preview.cutover else None,
            "counts": billing.preview_counts(preview.rows),
            "rows": preview.rows,
        }
        if as_json:
            self.stdout.write(json.dumps(data, indent=2))
            return
        counts = data["counts"]
        self.stdout.write(
            f"Tenant {tenant.slug}  preview {preview.uuid}  cutover {data['cutover']}  {counts['lines']} lines: "
            f"{counts['placed']} placed, {counts['not_placed']} cannot be placed, {counts['collisions']} collide"
        )
        for r in preview.rows:
            where = (
                f"-> {r['agreement']} (id {r['agreement_id']}) from {r['addition']['effectiveDate'][:10]}"
                if r["placed"]
                else f"CANNOT BE PLACED [{r['cause']}] {r['reason']}"
            )
            self.stdout.write(
                f"  line {r['line']:<4} {r['customer']} | {r['quantity']} x {r['product']} ({r['term']}) {where}"
            )
            if r["collisions"]:
                self.stdout.write(f"      collides with: {collision_text(r['collisions'])}")
        self.stdout.write("Nothing was written to ConnectWise.")
