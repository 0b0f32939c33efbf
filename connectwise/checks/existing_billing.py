"""Step 7, existing_billing ("Seats billed today"): what the chosen customers' agreements already bill.

The costliest first-sync failure is a silent double charge: seats the partner already bills with agreement
additions (typed by hand, or written by another distributor's tool) get a second addition from the sync. This
step reads the additions of every chosen customer's active agreements and reports the seat additions that
still bill after the cutover date:

- ``billing.existing_additions``: on the customer's target agreement (one finding per customer, every addition
  listed with product, quantity and effective date);
- ``billing.addition_on_other_agreement``: on another active agreement of the same customer.

Both are warnings: the step never blocks readiness (registry ``advisory``). Repair: end the chosen additions at
the cutover (one PATCH of ``cancelledDate`` each).

Which additions are "seats the sync would duplicate" (assumption, documented in the UI): additions of a product
whose identifier starts with "misc", the product the sync writes seats with (catalog step; the sync vendor's
setup guide). Additions of any other product (hardware, services) are never flagged, and never ended.

Cost (PRODUCT.md step 7): the SPEC has no cross-agreement additions endpoint (only
``/finance/agreements/{parentId}/additions``), so this step makes one read per active agreement of a chosen
customer: one GET of a full page (1000), read on through ``list()`` only when it comes back full. The reads run
concurrently, bounded by the client's in-flight limit. That is why it runs on request, after the customers or
mappings change, and in the scheduled verify at most every ``EXISTING_BILLING_INTERVAL_DAYS``.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date
from typing import Any

from connectwise.client import replace_operation
from connectwise.errors import ConnectWiseError

from . import agreement_facts, agreement_targets, agreements, codes
from .base import Finding, Severity, Status, StepOutcome
from .context import AGREEMENTS as AGREEMENTS_ROLE
from .context import PAGE_SIZE, Resource, RunContext, ref_name
from .failures import read_error
from .operations import PlannedOperation, patch_description

KEY = "existing_billing"
MISC_PREFIX = "misc"
ADDITION_FIELDS = "id,product/id,product/identifier,description,quantity,effectiveDate,cancelledDate,billCustomer,agreementId"


def additions_path(agreement_id: int) -> str:
    """SPEC path of one agreement's additions (tag AgreementAdditions)."""
    return f"finance/agreements/{int(agreement_id)}/additions"


def needs(choices) -> frozenset[str]:
    """The agreement read shared with the agreements step (targets are chosen the same way)."""
    return agreements.needs(choices)


def end_of_month(day: date) -> date:
    """The last day of ``day``'s calendar month: the default cutover (the end of the current billing month)."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def cutover_of(ctx: RunContext) -> date:
    """The tenant's chosen cutover date, else the end of the current month (UTC)."""
    return getattr(ctx.choices, "cutover", None) or end_of_month(ctx.now.astimezone(UTC).date())


def cutover_value(day: date) -> str:
    """``cancelledDate`` as ConnectWise writes dates (SPEC ``date-time``, midnight UTC)."""
    return f"{day.isoformat()}T00:00:00Z"


def is_seat_addition(addition: dict) -> bool:
    """True for an addition of a misc product (see the module docstring: an assumption)."""
    product = addition.get("product") or {}
    identifier = str(product.get("identifier") or product.get("name") or "")
    return identifier.casefold().startswith(MISC_PREFIX)


def bills_after(addition: dict, cutover: date) -> bool:
    """Still billing after the cutover: no ``cancelledDate``, or one later than the cutover day."""
    cancelled = agreement_facts.parse_dt(addition.get("cancelledDate"))
    return cancelled is None or cancelled.date() > cutover


def read_additions(ctx: RunContext, agreement_ids: list[int]) -> dict[int, list[dict]]:
    """Every addition of each agreement: one GET of a full page each, concurrently (the client bounds the number
    in flight); a full page is read again through ``list()`` so nothing is cut off. Raises the ConnectWise error
    of a failed read (the runner turns it into ``step.read_forbidden`` / ``step.check_failed``)."""
    client = ctx.client

    def one(agreement_id: int) -> list[dict]:
        path = additions_path(agreement_id)
        rows = client.get(path, params={"pageSize": PAGE_SIZE, "orderBy": "id asc"}, fields=ADDITION_FIELDS)
        rows = [rows] if isinstance(rows, dict) else list(rows or [])
        if len(rows) >= PAGE_SIZE:
            rows = client.list(path, fields=ADDITION_FIELDS, order_by="id asc", page_size=PAGE_SIZE)
        return rows

    ids = list(dict.fromkeys(agreement_ids))
    return dict(zip(ids, client.map_concurrent(one, ids), strict=True))


def describe_addition(addition: dict) -> dict[str, Any]:
    """What the page and the plan show of one addition."""
    product = addition.get("product") or {}
    return {
        "id": addition.get("id"),
        "agreement_id": addition.get("agreementId"),
        "product": product.get("identifier") or ref_name(addition, "product"),
        "product_id": product.get("id"),
        "description": addition.get("description") or "",
        "quantity": addition.get("quantity"),
        "effective_date": str(addition.get("effectiveDate") or "")[:10],
        "cancelled_date": str(addition.get("cancelledDate") or "")[:10] or None,
        "cancelled_value": addition.get("cancelledDate"),  # as ConnectWise wrote it: the plan's value before
    }


def blocked_reason(choices) -> str | None:
    """Without a chosen customer there are no agreements to read: the step waits (blocked), never a Pass on
    nothing (the same hook as ``agreements.blocked_reason``, called by the runner before ``check``)."""
    if not choices.companies:
        return "Waiting for customers: choose at least one on the Customers step, then we check what they are billed today."
    return None


def check(ctx: RunContext) -> StepOutcome:
    """Read the chosen customers' additions and flag the seat additions that still bill after the cutover.
    The runner never calls it without a chosen customer (``blocked_reason``)."""
    cutover = cutover_of(ctx)
    if not ctx.choices.companies:  # called directly (tests, tools): the same answer the runner gives
        return StepOutcome(
            KEY, Status.BLOCKED, summary=blocked_reason(ctx.choices) or "", facts=_facts(cutover)
        )
    companies = {c["id"]: c for c in ctx.get("companies")}
    by_company = agreement_facts.agreements_by_company(ctx)
    targets = {t.company_id: t for t in agreement_targets.select_targets(ctx)}
    plan: dict[int, list[tuple[dict, bool]]] = {}  # company id -> [(agreement, is the target)]
    for company_id, target in targets.items():
        target_id = (target.agreement or {}).get("id")
        for a in by_company.get(company_id, []):
            if a["id"] == target_id or (
                agreement_facts.is_active(a, ctx.now) and not agreement_facts.is_child(a)
            ):
                plan.setdefault(company_id, []).append((a, a["id"] == target_id))
    try:
        rows = read_additions(ctx, [a["id"] for read in plan.values() for a, _ in read])
    except ConnectWiseError as exc:
        path = (exc.path or "finance/agreements/{id}/additions").strip("/")
        return read_error(KEY, exc, Resource("additions", path, AGREEMENTS_ROLE))

    findings: list[Finding] = []
    per_customer: list[dict] = []
    for company_id, target in targets.items():
        cname = (companies.get(company_id) or {}).get("name") or f"company id {company_id}"
        on_target: list[dict] = []
        elsewhere: dict[int, tuple[dict, list[dict]]] = {}
        for agreement, is_target in plan.get(company_id, []):
            flagged = [
                describe_addition({**r, "agreementId": r.get("agreementId") or agreement["id"]})
                for r in rows.get(agreement["id"], [])
                if is_seat_addition(r) and bills_after(r, cutover)
            ]
            if not flagged:
                continue
            if is_target:
                on_target.extend(flagged)
            else:
                elsewhere[agreement["id"]] = (agreement, flagged)
        per_customer.append(
            {
                "company_id": company_id,
                "company": cname,
                "target_agreement_id": (target.agreement or {}).get("id"),
                "on_target": on_target,
                "elsewhere": [
                    {"agreement_id": aid, "agreement": a.get("name"), "additions": adds}
                    for aid, (a, adds) in elsewhere.items()
                ],
            }
        )
        if on_target:
            findings.append(_existing(cname, company_id, target.agreement, on_target, cutover))
        for agreement, adds in elsewhere.values():
            findings.append(_other_agreement(cname, company_id, agreement, target.agreement, adds, cutover))

    flagged = sum(len(f.data["additions"]) for f in findings)
    summary = (
        f"{flagged} addition(s) on {len({f.data['company_id'] for f in findings})} customer(s) would be billed "
        f"twice after the cutover on {cutover.isoformat()}."
        if findings
        else f"No seat additions bill after the cutover on {cutover.isoformat()}: nothing would be billed twice."
    )
    return StepOutcome.from_findings(
        KEY,
        findings,
        summary,
        **_facts(cutover),
        customers=per_customer,
        agreements_read=len(rows),
    )


def _facts(cutover: date) -> dict[str, Any]:
    return {"cutover": cutover.isoformat()}


def _listing(adds: list[dict]) -> str:
    parts = []
    for a in adds[:10]:
        label = a["description"] or a["product"]
        parts.append(
            f'{a["quantity"]} x "{label}" ({a["product"]}, addition {a["id"]}, effective '
            f"{a['effective_date'] or 'not set'}"
            + (f", ends {a['cancelled_date']}" if a["cancelled_date"] else "")
            + ")"
        )
    more = f" and {len(adds) - 10} more" if len(adds) > 10 else ""
    return "; ".join(parts) + more


def _fix(cname: str, agreement: dict | None, cutover: date) -> str:
    name = f'"{(agreement or {}).get("name")}"' if agreement else ""
    return (
        f"In ConnectWise go to Companies > Companies > {cname} > tab Agreements > open the agreement {name} > tab "
        f"Additions > open each addition listed > set Cancelled Date to {cutover.isoformat()} > Save. Or let us "
        "end them at the cutover date for you."
    )


def _existing(cname, company_id, agreement, adds, cutover) -> Finding:
    return Finding(
        codes.BILLING_EXISTING_ADDITIONS,
        Severity.WARNING,
        subject=f"{agreement_facts.describe(agreement)} of {cname}",
        explanation=(
            f"{cname}'s target agreement already bills {len(adds)} seat addition(s) that run past the cutover on "
            f"{cutover.isoformat()}: {_listing(adds)}. When the sync adds its own seats, these customers are "
            "billed twice unless the old additions end at the cutover."
        ),
        fix=_fix(cname, agreement, cutover),
        repairable=True,
        record={"path": "finance/agreements", "id": agreement["id"]},
        data={"company_id": company_id, "agreement_id": agreement["id"], "additions": adds},
    )


def _other_agreement(cname, company_id, agreement, target, adds, cutover) -> Finding:
    where = agreement_facts.describe(target) if target else "no target agreement yet"
    return Finding(
        codes.BILLING_ADDITION_ON_OTHER_AGREEMENT,
        Severity.WARNING,
        subject=f"{agreement_facts.describe(agreement)} of {cname}",
        explanation=(
            f"{cname} also bills {len(adds)} seat addition(s) on another active agreement, not on the one the sync "
            f"writes to ({where}): {_listing(adds)}. After the first sync the customer would pay for these seats "
            "on both agreements."
        ),
        fix=_fix(cname, agreement, cutover),
        repairable=True,
        record={"path": "finance/agreements", "id": agreement["id"]},
        data={"company_id": company_id, "agreement_id": agreement["id"], "additions": adds},
    )


# -- repair: end the flagged additions at the cutover -------------------------------------------------------


def write_needs(finding: Finding) -> tuple[tuple[str, str], str] | None:
    """The security-role right a repair of ``finding`` writes with (docs/connectwise/REFERENCE.md §2, PRODUCT.md's
    guard table): PATCH cancelledDate on an agreement's additions (Edit)."""
    if not finding.repairable:
        return None
    return ("Finance", "Agreements"), "editLevel"


def plan_operations(
    ctx: RunContext, outcome: StepOutcome, addition_ids: list[int] | set[int] | None = None
) -> list[PlannedOperation]:
    """One PATCH of ``cancelledDate`` per flagged addition (all of them, or those in ``addition_ids``), setting it
    to the cutover; the value before is kept for the approval page and the audit trail. Applying is idempotent:
    ``plans.apply_operation`` re-reads the addition and skips it when it already ends at the cutover."""
    cutover = cutover_of(ctx)
    value = cutover_value(cutover)
    if addition_ids is not None:
        addition_ids = {int(i) for i in addition_ids}
    ops: list[PlannedOperation] = []
    for f in outcome.findings:
        if not f.repairable or f.code not in (
            codes.BILLING_EXISTING_ADDITIONS,
            codes.BILLING_ADDITION_ON_OTHER_AGREEMENT,
        ):
            continue
        for a in f.data["additions"]:
            if addition_ids is not None and a["id"] not in addition_ids:
                continue
            label = a["description"] or a["product"]
            ops.append(
                PlannedOperation(
                    method="PATCH",
                    path=f"{additions_path(a['agreement_id'] or f.data['agreement_id'])}/{a['id']}",
                    body=[replace_operation("cancelledDate", value)],
                    finding_code=f.code,
                    subject=f"Addition {a['id']} ({a['quantity']} x {label}) on {f.subject}",
                    description=patch_description(
                        "Cancelled Date",
                        f'addition {a["id"]} ({a["quantity"]} x "{label}")',
                        a["cancelled_date"] or "not set",
                        cutover.isoformat(),
                    ),
                    before={"cancelledDate": a.get("cancelled_value", a["cancelled_date"])},
                )
            )
    return ops


def flagged_ids(outcome: StepOutcome) -> list[int]:
    """Ids of every addition the outcome flags (both codes)."""
    return [a["id"] for f in outcome.findings for a in f.data.get("additions", [])]
