"""Set a tenant's chosen companies in bulk from a CSV (columns: company, motion, optional agreement): the same
choice the customers and agreements pages make. Every row is resolved against the tenant's ConnectWise first;
if any row does not resolve, the problems are reported by line number and nothing is changed."""

from __future__ import annotations

import csv
import io

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from connectwise.checks.choices import MOTIONS as CHOSEN_MOTIONS
from connectwise.checks.customers import inactive_reason
from connectwise.errors import ConnectWiseError
from connectwise.query import split_in

from ... import mapping
from ...cw import client_for
from ...models import CompanyChoice
from ._common import connect_or_exit, get_tenant

MOTIONS = {motion: motion for motion in CHOSEN_MOTIONS}  # connectwise.checks.choices.MOTIONS


class Command(BaseCommand):
    help = "Set a tenant's chosen companies from a CSV with columns company, motion and optional agreement."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", required=True, dest="csv_path", metavar="FILE")

    def handle(self, *args, slug, csv_path, **options):
        tenant = get_tenant(slug)
        rows = read_rows(csv_path)
        connection, decision = connect_or_exit(tenant)
        try:
            with client_for(connection, decision) as client:
                # deletedFlag and status as the customers check reads them (spec schema Company: deletedFlag,
                # status -> CompanyStatus.inactiveFlag), so the CLI refuses what the next verify would flag.
                companies = client.list(
                    "company/companies",
                    fields="id,identifier,name,status/id,status/name,deletedFlag",
                    order_by="id asc",
                )
                statuses = {
                    s["id"]: s
                    for s in client.list("company/companies/statuses", fields="id,name,inactiveFlag")
                }
                wanted_agreements = sorted({int(r["agreement"]) for _, r in rows if r.get("agreement")})
                agreements = []
                for cond in split_in("id", wanted_agreements) if wanted_agreements else []:
                    agreements += client.list(
                        "finance/agreements", conditions=cond, fields="id,name,company/id"
                    )
        except ConnectWiseError as exc:
            raise CommandError(f"Could not read your ConnectWise: {exc}") from None

        by_id = {c["id"]: c for c in companies}
        by_identifier = {str(c.get("identifier", "")).lower(): c for c in companies}
        agreement_company = {a["id"]: (a.get("company") or {}).get("id") for a in agreements}
        problems, resolved, warnings = [], [], []
        for line, row in rows:
            ref = row["company"]
            company = by_id.get(int(ref)) if ref.isascii() and ref.isdigit() else None
            company = company or by_identifier.get(ref.lower())
            if company is None:
                problems.append(
                    f"line {line}: company {ref!r} is not a company id or identifier in ConnectWise"
                )
                continue
            if company.get("deletedFlag"):
                problems.append(
                    f"line {line}: company {company.get('name')!r} (id {company['id']}) is deleted in ConnectWise"
                )
                continue
            reason = inactive_reason(company, statuses)
            if reason:
                warnings.append(
                    f"line {line}: company {company.get('name')!r} is not active ({reason}); it is chosen, "
                    "and verify will report customers.company_inactive until it is active"
                )
            agreement_id = int(row["agreement"]) if row.get("agreement") else None
            if agreement_id is not None and agreement_company.get(agreement_id) != company["id"]:
                problems.append(
                    f"line {line}: agreement {agreement_id} does not exist or does not belong to {company['name']!r}"
                )
                continue
            if any(c["id"] == company["id"] for c, _, _ in resolved):
                problems.append(f"line {line}: {company['name']!r} is already chosen on an earlier line")
                continue
            resolved.append((company, row["motion"], agreement_id))
        if problems:
            raise CommandError("Nothing was changed:\n  " + "\n  ".join(problems))

        with transaction.atomic():
            CompanyChoice.objects.filter(tenant=tenant).delete()
            CompanyChoice.objects.bulk_create(
                [
                    CompanyChoice(
                        tenant=tenant,
                        cw_company_id=c["id"],
                        identifier=(c.get("identifier") or "")[:100],
                        name=(c.get("name") or "")[:200],
                        motion=motion,
                        agreement_id=agreement_id,
                    )
                    for c, motion, agreement_id in resolved
                ]
            )
            mapping.record_change(
                tenant,
                "operator (command line)",
                message=f"{len(resolved)} companies chosen from {csv_path}",
                count=len(resolved),
            )
        for warning in warnings:
            self.stderr.write(f"Warning: {warning}")
        self.stdout.write(f"Chose {len(resolved)} companies for {tenant.slug}.")


def read_rows(path: str) -> list[tuple[int, dict]]:
    """Parse and validate the CSV shape; every problem is reported with its line number."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    missing = {"company", "motion"} - set(fields)
    if missing:
        raise CommandError(
            f"{path}: missing column(s) {', '.join(sorted(missing))}; expected company, motion, agreement"
        )
    reader.fieldnames = fields
    rows, problems, seen = [], [], {}
    for row in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in row.items() if k}
        if not any(row.values()):
            continue
        motion = row.get("motion", "").lower()
        if not row.get("company"):
            problems.append(f"line {line}: company is empty")
        elif motion not in MOTIONS:
            problems.append(f"line {line}: motion {row.get('motion')!r} must be monthly, azure or annual")
        elif row.get("agreement") and not (row["agreement"].isascii() and row["agreement"].isdigit()):
            problems.append(f"line {line}: agreement {row['agreement']!r} must be an agreement id (a number)")
        elif row["company"].lower() in seen:
            problems.append(
                f"line {line}: company {row['company']!r} repeats line {seen[row['company'].lower()]}"
            )
        else:
            seen[row["company"].lower()] = line
            rows.append((line, {**row, "motion": MOTIONS[motion]}))
    if problems:
        raise CommandError("Nothing was changed:\n  " + "\n  ".join(problems))
    if not rows:
        raise CommandError(f"{path} has no rows")
    return rows
