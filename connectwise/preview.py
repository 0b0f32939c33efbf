"""Preview of the first sync: where each line of the distributor's subscription list would land, read-only.

The partner (or support, for them) imports the subscription list as CSV (``connectwise.subscriptions``: billing
customer, product name or SKU, quantity, term and start date). For each line the preview says which ConnectWise company and
target agreement it goes to, the agreement addition the sync would create there, and every existing addition it
would collide with; a line that cannot be placed says why. It reads ConnectWise and writes nothing.

What the sync would create (assumption, from the sync vendor's setup guide the product follows): an addition of
the misc product (catalog step) whose description is the subscription's product name, with the line's quantity,
effective from the later of the line's start date and the day after the cutover; monthly lines on a prorated
agreement are prorated when they start mid-month, annual lines go to a one-time agreement and are billed once.

Causes a line cannot be placed (public contract, like finding codes: add, never rename):
``customer_unmatched``, ``no_target_agreement``, ``annual_on_recurring``, ``monthly_on_one_time``,
``no_misc_product``.
"""

from __future__ import annotations

import calendar
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from connectwise.checks import agreement_facts, agreement_targets, agreements, existing_billing
from connectwise.checks.context import RunContext, ref_name
from connectwise.checks.names import normalize_company_name
from connectwise.subscriptions import SubscriptionCsvError as SubscriptionCsvError  # docs/INTERFACES.md
from connectwise.subscriptions import SubscriptionLine, match_key
from connectwise.subscriptions import parse_subscriptions as parse_subscriptions  # docs/INTERFACES.md

CUSTOMER_UNMATCHED = "customer_unmatched"
NO_TARGET_AGREEMENT = "no_target_agreement"
ANNUAL_ON_RECURRING = "annual_on_recurring"
MONTHLY_ON_ONE_TIME = "monthly_on_one_time"
NO_MISC_PRODUCT = "no_misc_product"
CAUSES = (CUSTOMER_UNMATCHED, NO_TARGET_AGREEMENT, ANNUAL_ON_RECURRING, MONTHLY_ON_ONE_TIME, NO_MISC_PRODUCT)


@dataclass
class PreviewRow:
    """What the first sync would do with one subscription line (plain data, stored and exported as is)."""

    line: int
    customer: str
    product: str
    quantity: int
    term: str
    start: str
    placed: bool = False
    cause: str | None = None  # one of CAUSES when not placed
    reason: str = ""  # plain language: where it goes, or why it cannot be placed
    company_id: int | None = None
    company: str = ""
    agreement_id: int | None = None
    agreement: str = ""
    addition: dict[str, Any] | None = (
        None  # product, description, quantity, effectiveDate, proration, oneTime
    )
    collisions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def misc_product(ctx: RunContext) -> dict | None:
    """The product the sync writes with: an active misc product, "misc" itself first."""
    items = [
        p
        for p in ctx.get("misc_catalog")
        if str(p.get("identifier") or "").casefold().startswith("misc") and not p.get("inactiveFlag")
    ]
    items.sort(key=lambda p: (str(p.get("identifier")).casefold() != "misc", p["id"]))
    return items[0] if items else None


def needs(choices) -> frozenset[str]:
    return agreements.needs(choices) | {"misc_catalog"}


def preview_sync(
    ctx: RunContext, lines: list[SubscriptionLine], billing_matches: dict[str, int] | None = None
) -> list[PreviewRow]:
    """One ``PreviewRow`` per line, in file order. Reads (never writes) ConnectWise through ``ctx``: the shared
    agreement reads, the misc products, and the additions of the matched customers' active agreements (one read
    per agreement, concurrent). ``billing_matches`` maps a normalised billing-customer name to the ConnectWise
    company id the partner matched it to on the customers page. Raises the ConnectWise error of a failed read."""
    ctx.prefetch(needs(ctx.choices))
    cutover = existing_billing.cutover_of(ctx)
    first_day = cutover + timedelta(days=1)
    companies = {c["id"]: c for c in ctx.get("companies") if not c.get("deletedFlag")}
    chosen = {c.cw_company_id for c in ctx.choices.companies}
    targets = {t.company_id: t for t in agreement_targets.select_targets(ctx)} if chosen else {}
    cycles = agreement_facts.cycles_by_id(ctx)
    product = misc_product(ctx)
    by_name: dict[str, int] = {}
    for cid, c in companies.items():
        for text in (c.get("name"), c.get("identifier")):
            key = normalize_company_name(str(text or ""))
            if key:
                # a chosen company wins a name shared with one that is not chosen
                if key not in by_name or (cid in chosen and by_name[key] not in chosen):
                    by_name[key] = cid
    for name, cid in (billing_matches or {}).items():
        by_name[normalize_company_name(name)] = cid

    rows: list[PreviewRow] = []
    wanted_agreements: dict[int, int] = {}  # agreement id -> company id, for the additions read
    for sub in lines:
        row = PreviewRow(sub.line, sub.customer, sub.product, sub.quantity, sub.term, sub.start.isoformat())
        rows.append(row)
        cid = by_name.get(normalize_company_name(sub.customer))
        if cid is None or cid not in chosen:
            row.cause = CUSTOMER_UNMATCHED
            row.reason = (
                f'"{sub.customer}" is ConnectWise company "{companies[cid].get("name")}", which is not chosen on '
                "the Customers step."
                if cid is not None
                else f'No chosen ConnectWise company matches the billing customer "{sub.customer}".'
            )
            if cid is not None:
                row.company_id, row.company = cid, companies[cid].get("name") or ""
            continue
        row.company_id, row.company = cid, (companies.get(cid) or {}).get("name") or f"company id {cid}"
        target = targets.get(cid)
        agreement = target.agreement if target else None
        if agreement is None:
            row.cause = NO_TARGET_AGREEMENT
            how = {
                "ambiguous": "several agreements fit and none is chosen",
                "explicit_missing": "the chosen agreement no longer exists",
            }.get(target.how if target else "", "it has no active agreement that fits")
            row.reason = f"{row.company} has no target agreement: {how} (see the Agreements step)."
            continue
        row.agreement_id, row.agreement = agreement["id"], agreement.get("name") or ""
        one_time = bool(agreement_facts.one_time_signals(agreement, cycles))
        if sub.term == "annual" and not one_time:
            row.cause = ANNUAL_ON_RECURRING
            row.reason = (
                f'An annual subscription would go to "{row.agreement}", which bills on a recurring cycle '
                f"({ref_name(agreement, 'billingCycle') or 'none'}); annual seats need a one-time agreement."
            )
            continue
        if sub.term == "monthly" and one_time:
            row.cause = MONTHLY_ON_ONE_TIME
            row.reason = (
                f'A monthly subscription would go to "{row.agreement}", which bills once (one-time); monthly '
                "seats need a recurring monthly agreement."
            )
            continue
        if product is None:
            row.cause = NO_MISC_PRODUCT
            row.reason = 'There is no active product whose ID starts with "misc" to bill with (see the Product catalog step).'
            continue
        effective = max(sub.start, first_day)
        row.placed = True
        row.addition = {
            "product": product.get("identifier"),
            "description": sub.product,
            "quantity": sub.quantity,
            "effectiveDate": existing_billing.cutover_value(effective),
            "oneTime": sub.term == "annual",
            "proration": _proration(sub.term, agreement, effective),
        }
        row.reason = f'A new addition on "{row.agreement}" from {effective.isoformat()}.'
        for a in agreement_facts.agreements_by_company(ctx).get(cid, []):
            if a["id"] == agreement["id"] or (
                agreement_facts.is_active(a, ctx.now) and not agreement_facts.is_child(a)
            ):
                wanted_agreements[a["id"]] = cid

    _collisions(ctx, rows, wanted_agreements, cutover)
    return rows


def _proration(term: str, agreement: dict, effective: date) -> str:
    if term == "annual":
        return "none: one-time, billed once for the year"
    if agreement.get("prorateFlag") is not True:
        return "not expected: the agreement is not prorated, so the first month is billed in full"
    if effective.day == 1:
        return "none: starts on the first of the month"
    days = calendar.monthrange(effective.year, effective.month)[1]
    used = days - effective.day + 1
    return f"expected: {used} of {days} days in the first month"


def _collisions(ctx: RunContext, rows: list[PreviewRow], wanted: dict[int, int], cutover: date) -> None:
    """Existing additions, still billing after the cutover, whose product or description is the line's product,
    on any active agreement of the line's company."""
    if not wanted:
        return
    read = existing_billing.read_additions(ctx, list(wanted))
    names = {
        a["id"]: a.get("name") or ""
        for rows_ in agreement_facts.agreements_by_company(ctx).values()
        for a in rows_
    }
    by_company: dict[int, list[tuple[int, dict]]] = {}
    for agreement_id, additions in read.items():
        for addition in additions:
            if existing_billing.bills_after(addition, cutover):
                by_company.setdefault(wanted[agreement_id], []).append((agreement_id, addition))
    for row in rows:
        if not row.placed:
            continue
        key = match_key(row.product)
        for agreement_id, addition in by_company.get(row.company_id, []):
            product = addition.get("product") or {}
            if key not in (
                match_key(str(product.get("identifier") or "")),
                match_key(str(addition.get("description") or "")),
            ):
                continue
            described = existing_billing.describe_addition({**addition, "agreementId": agreement_id})
            row.collisions.append(
                {
                    **described,
                    "agreement": names.get(agreement_id, ""),
                    "same_agreement": agreement_id == row.agreement_id,
                }
            )


EXPORT_COLUMNS = (
    "line",
    "customer",
    "product",
    "quantity",
    "term",
    "start",
    "placed",
    "cause",
    "reason",
    "company_id",
    "company",
    "agreement_id",
    "agreement",
    "addition_product",
    "addition_description",
    "addition_quantity",
    "effective_date",
    "one_time",
    "proration",
    "collisions",
)


def export_rows(rows: list[dict]) -> list[list[Any]]:
    """The CSV export: a header, then one row per line with the same values the page shows."""
    out: list[list[Any]] = [list(EXPORT_COLUMNS)]
    for r in rows:
        a = r.get("addition") or {}
        out.append(
            [
                r["line"],
                r["customer"],
                r["product"],
                r["quantity"],
                r["term"],
                r["start"],
                "yes" if r["placed"] else "no",
                r.get("cause") or "",
                r.get("reason") or "",
                r.get("company_id") or "",
                r.get("company") or "",
                r.get("agreement_id") or "",
                r.get("agreement") or "",
                a.get("product", ""),
                a.get("description", ""),
                a.get("quantity", ""),
                str(a.get("effectiveDate") or "")[:10],
                ("yes" if a.get("oneTime") else "no") if a else "",
                a.get("proration", ""),
                collision_text(r.get("collisions") or []),
            ]
        )
    return out


def collision_text(collisions: list[dict]) -> str:
    """One line per collision, as the page and the export write it."""
    return "; ".join(
        f'{c["quantity"]} x "{c["description"] or c["product"]}" ({c["product"]}, addition {c["id"]}) on '
        f'"{c["agreement"]}"{"" if c["same_agreement"] else " (another agreement)"}'
        for c in collisions
    )
