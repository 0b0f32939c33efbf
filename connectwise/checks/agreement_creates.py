"""New agreements: what the agreements step creates for a company without a fitting agreement, or why it cannot.

The body of a create from the partner's defaults for the motion (issue 18) or, for annual seats without defaults,
from the agreement types (``annual_agreement_type``); the POST operation with its re-query ``lookup`` (company,
type, name); and the plain-words reasons a create is not possible (``NO_DEFAULT_CONTACT``, ``cannot_repair``).
"""

from __future__ import annotations

from datetime import datetime

from connectwise.query import cond

from . import agreement_defaults
from .agreement_facts import (
    ANNUAL,
    CALENDAR_YEAR,
    agreements_by_company,
    monthly_cycle,
    one_time_cycle,
    type_is_one_time,
)
from .base import Finding
from .choices import MOTION_LABELS
from .context import RunContext, ref_id
from .operations import PlannedOperation
from .role import agreement_type_allowed, allowed_items

NO_MONTHLY_CYCLE = "your Billing Cycle table has no cycle that recurs Monthly to switch it to"


NO_DEFAULT_CONTACT = (
    "the company has no default contact, and ConnectWise requires a contact on a new agreement: in ConnectWise "
    "go to Companies > Companies > the company > set Default Contact (or open a contact and tick Default "
    "Contact) > Save, then check again"
)


def cannot_repair(why_not: str) -> str:
    """The sentence a finding of a repairable kind adds when it is not repairable (issue 17: it says why)."""
    return f" We can't fix this for you: {why_not}." if why_not else ""


# The ONE place that decides how a one-time (annual) agreement is written (issue 17). In ConnectWise "One-Time" is a
# setting of the agreement's Recurring Invoice Parameters, not a row partners keep in the Billing Cycle table.
# Assumption, from the SPEC's Agreement schema (2025.8): ``billOneTimeFlag`` sits among the invoicing fields
# (``billingCycle``, ``prorateFirstBill``, ``billStartDate``) and is that setting; ``oneTimeFlag`` sits among the
# Application Parameters (``applicationUnits``, ``applicationLimit``) and is about the agreement's allowance, not
# its invoicing. So a new annual agreement gets ``billOneTimeFlag: true``; a NotRecurring billing cycle, when the
# partner keeps one, is set as well, but is never required. Reading still accepts any signal (one_time_signals).
ONE_TIME_FIELD = "billOneTimeFlag"


def motion_defaults(ctx: RunContext, motion: str) -> dict | None:
    """The partner's defaults for new agreements of the motion (``agreement_defaults`` module), or None."""
    return (getattr(ctx.choices, "agreement_defaults", None) or {}).get(motion) or None


def annual_create(ctx: RunContext, company: dict) -> tuple[dict | None, str]:
    """``(create, why_not)``: what a one-time agreement for an annual customer would be created with, or None and
    the reason in plain words when we cannot create it."""
    type_ = annual_agreement_type(ctx, company["id"])
    if type_ is None:
        return None, (
            "we cannot tell which agreement type to create it with: no active agreement type that the API "
            "member's role allows is marked to bill one time, none of the company's agreements has an allowed "
            "type, and more than one type is allowed"
        )
    contact_id = ref_id(company, "defaultContact")
    if contact_id is None:
        return None, NO_DEFAULT_CONTACT
    cycle = one_time_cycle(ctx) if ctx.error_of("billing_cycles") is None else None
    name = f"{company.get('name') or company['id']} Annual seats"[:100]
    create = {
        "name": name,
        "type": {"id": type_["id"], "name": type_.get("name")},
        "company": {"id": company["id"]},
        "company_name": company.get("name") or "",
        "contact_id": contact_id,
        "motion": ANNUAL,
        ONE_TIME_FIELD: True,
        "billingCycle": {"id": cycle["id"], "name": cycle.get("name")} if cycle else None,
    }
    return create, ""


def default_create(ctx: RunContext, company: dict, motion: str) -> tuple[dict | None, str]:
    """``(create, why_not)`` for a company without a fitting agreement, from its motion's defaults (issue 18).

    Everything the SPEC requires on create (``Agreement``: name, type, company, contact) and the readiness
    settings from the start: Monthly billing cycle, ``invoicingCycle`` CalendarYear and ``prorateFlag`` for
    monthly and Azure Plan; ``billOneTimeFlag`` (``ONE_TIME_FIELD``, an assumption) and a one-time billing cycle
    when there is one for annual. The contact is the company's Default Contact (``defaultContact``)."""
    defaults = motion_defaults(ctx, motion) or {}
    allowed = allowed_items(ctx)
    types = {t["id"]: t for t in ctx.get("agreement_types")}
    type_ = types.get(defaults.get("type_id"))
    label = MOTION_LABELS[motion]
    if type_ is None or type_.get("inactiveFlag"):
        return None, (
            f'the agreement type "{defaults.get("type_name")}" of the {label} defaults is gone or inactive in '
            "ConnectWise: choose another under Defaults for new agreements"
        )
    if allowed is not None and not agreement_type_allowed(allowed, type_.get("name") or ""):
        return None, (
            f'the agreement type "{type_.get("name")}" of the {label} defaults is not in the API member\'s '
            "Access Allowed list, so ConnectWise would refuse the create"
        )
    contact_id = ref_id(company, "defaultContact")
    if contact_id is None:
        return None, NO_DEFAULT_CONTACT
    cycles_ok = ctx.error_of("billing_cycles") is None
    name = agreement_defaults.render(
        defaults.get("name") or agreement_defaults.DEFAULT_NAMES[motion],
        company=company.get("name") or str(company["id"]),
        identifier=company.get("identifier") or "",
    )
    create: dict = {
        "name": name,
        "type": {"id": type_["id"], "name": type_.get("name")},
        "company": {"id": company["id"]},
        "company_name": company.get("name") or "",
        "contact_id": contact_id,
        "motion": motion,
        "startDate": agreement_defaults.start_date(defaults, ctx.now),
    }
    if motion == ANNUAL:
        cycle = one_time_cycle(ctx) if cycles_ok else None
        one_time = defaults.get("one_time", True)
        if not one_time and cycle is None:
            return None, (
                "the annual defaults leave One-Time off and ConnectWise has no billing cycle that bills one time "
                "(NotRecurring): tick One-Time under Defaults for new agreements"
            )
        create[ONE_TIME_FIELD] = bool(one_time)
        create["billingCycle"] = {"id": cycle["id"], "name": cycle.get("name")} if cycle else None
    else:
        cycle = monthly_cycle(ctx) if cycles_ok else None
        if cycle is None:
            return None, NO_MONTHLY_CYCLE
        create["billingCycle"] = {"id": cycle["id"], "name": cycle.get("name")}
        create["invoicingCycle"] = CALENDAR_YEAR
        create["prorateFlag"] = True
    return create, ""


def annual_agreement_type(ctx: RunContext, company_id: int) -> dict | None:
    """The type for a new annual agreement, by flags first: an allowed active type that bills one time
    (``billOneTimeFlag`` / ``oneTimeFlag``), preferring one the company already uses; else the type of one of the
    company's agreements; else the only allowed type. Types the role's Access Allowed list refuses are skipped
    when that list is readable. (The old rule preferred "annual" in the type's name; a name now only orders
    types that the flags could not tell apart.)"""
    allowed = allowed_items(ctx)
    types = [t for t in ctx.get("agreement_types") if not t.get("inactiveFlag")]
    if allowed is not None:
        types = [t for t in types if agreement_type_allowed(allowed, t.get("name") or "")]
    by_id = {t["id"]: t for t in types}
    own = [
        by_id[i]
        for i in dict.fromkeys(ref_id(a, "type") for a in agreements_by_company(ctx).get(company_id, []))
        if i in by_id
    ]

    def annualish(t: dict) -> bool:
        return "annual" in (t.get("name") or "").casefold()

    one_time = [t for t in types if type_is_one_time(t)]
    for pool in (
        [t for t in own if type_is_one_time(t)],
        sorted(one_time, key=lambda t: not annualish(t)),
        [t for t in own if annualish(t)],
        [t for t in types if annualish(t)],
        own,
    ):
        if pool:
            return pool[0]
    return types[0] if len(types) == 1 else None


def create_operation(f: Finding, spec: dict, now: datetime) -> PlannedOperation:
    """The POST of a new agreement from a finding's ``data.create`` (see ``default_create``)."""
    company_id = spec["company"]["id"]
    motion = spec.get("motion") or ANNUAL
    body: dict = {
        "name": spec["name"],
        "type": {"id": spec["type"]["id"]},
        "company": {"id": company_id},
        "contact": {"id": spec["contact_id"]},
        "startDate": spec.get("startDate") or now.strftime("%Y-%m-%dT00:00:00Z"),
    }
    if spec.get("billingCycle"):
        body["billingCycle"] = {"id": spec["billingCycle"]["id"]}
    settings = []
    if motion == ANNUAL:
        body[ONE_TIME_FIELD] = bool(spec.get(ONE_TIME_FIELD, True))
        if body[ONE_TIME_FIELD]:
            settings.append(f"{ONE_TIME_FIELD} true")
    else:
        body["invoicingCycle"] = spec.get("invoicingCycle") or CALENDAR_YEAR
        body["prorateFlag"] = True
        settings += ["Cycle Based On Calendar Year", "Prorate Agreement on"]
    if spec.get("billingCycle"):
        cycle = spec["billingCycle"]
        settings.insert(0, f'billing cycle "{cycle.get("name")}" (id {cycle["id"]})')
    company = f"{spec.get('company_name') or 'company'} (id {company_id})"
    return PlannedOperation(
        method="POST",
        path="finance/agreements",
        body=body,
        finding_code=f.code,
        subject=f'Agreement "{spec["name"]}" for {company}',
        description=(
            f'Create the {MOTION_LABELS.get(motion, motion)} agreement "{spec["name"]}" of type '
            f'"{spec["type"].get("name")}" (id {spec["type"]["id"]}) for {company}, starting '
            f"{body['startDate'][:10]}: {', '.join(settings)}"
        ),
        lookup={
            "path": "finance/agreements",
            "conditions": str(
                cond.and_(
                    cond.eq("company/id", company_id),
                    cond.eq("type/id", spec["type"]["id"]),
                    cond.eq("name", spec["name"]),
                )
            ),
        },
    )
