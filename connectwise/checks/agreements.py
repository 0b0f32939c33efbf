"""Step 6, agreements: each chosen company has one target agreement, set up for its billing motion.

Monthly and Azure Plan: billing cycle Monthly, ``invoicingCycle`` CalendarYear ("Cycle Based On"), ``prorateFlag``
("Prorate Agreement"). Annual: a one-time billing cycle (docs/connectwise/REFERENCE.md §3). The target is the partner's explicit
choice, else the single candidate that fits. All agreements come from one paged read shared with the customers
step: never one call per company or per agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache

from connectwise.client import replace_operation
from connectwise.errors import Forbidden
from connectwise.query import cond, split_in

from . import codes
from .base import Finding, Severity, Status, StepOutcome
from .context import RunContext, ref_id, ref_name, same_name
from .plans import PlannedOperation, ops_from_patch_findings
from .security_role import agreement_type_allowed, allowed_items, inquire_my_note

KEY = "agreements"

MOTION_LABELS = {"monthly": "Seat Based Monthly", "azure": "Azure Plan", "annual": "Seat Based Annual"}
RECURRING_MOTIONS = ("monthly", "azure")
ANNUAL = "annual"
MONTHLY_OPTION = "Monthly"
ONE_TIME_OPTION = (
    "NotRecurring"  # billingOptions of a "One Time" billing cycle (docs/connectwise/REFERENCE.md §2, §3)
)
CALENDAR_YEAR = "CalendarYear"

FIX_OPEN = "In ConnectWise go to Companies > Companies > {company} > tab Agreements > open {agreement}"


def needs(choices) -> frozenset[str]:
    # my_security: an Inquire level "My" is the likely cause of an agreement the run cannot see
    keys = {"agreements", "billing_cycles", "companies", "customize_items", "agreement_types", "my_security"}
    return frozenset(keys)


# -- facts about one agreement ----------------------------------------------------------------------------


def parse_dt(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    return _parse_dt_text(value)


@lru_cache(maxsize=8192)
def _parse_dt_text(value: str) -> datetime | None:
    """Agreements share a handful of start and end dates: parse each text once (benchmark verify)."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def has_ended(agreement: dict, now: datetime) -> bool:
    if agreement.get("noEndingDateFlag"):
        return False
    end = parse_dt(agreement.get("endDate"))
    return end is not None and end < now


def inactive_reasons(agreement: dict, now: datetime) -> list[str]:
    """Why an agreement is not active (empty: it is). A missing status counts as Active."""
    reasons = []
    status = agreement.get("agreementStatus")
    if status and status != "Active":
        reasons.append(f"its status is {status}")
    if agreement.get("cancelledFlag"):
        reasons.append("it is cancelled")
    if has_ended(agreement, now):
        reasons.append(f"it ended on {str(agreement.get('endDate'))[:10]}")
    return reasons


def is_active(agreement: dict, now: datetime) -> bool:
    # The common case first, without building the reasons: an Active, uncancelled agreement with no end date.
    if (
        agreement.get("agreementStatus") in (None, "", "Active")
        and not agreement.get("cancelledFlag")
        and (agreement.get("noEndingDateFlag") or not agreement.get("endDate"))
    ):
        return True
    return not inactive_reasons(agreement, now)


def is_child(agreement: dict) -> bool:
    return bool(ref_id(agreement, "parentAgreement") or agreement.get("parentAgreement"))


def cycles_by_id(ctx: RunContext) -> dict[int, dict]:
    return ctx.remember("billing_cycles_by_id", lambda: {c["id"]: c for c in ctx.get("billing_cycles")})


def billing_option(agreement: dict, cycles: dict[int, dict]) -> str | None:
    cycle = cycles.get(ref_id(agreement, "billingCycle"))
    if cycle is not None:
        return cycle.get("billingOptions")
    return None


def one_time_signals(agreement: dict, cycles: dict[int, dict]) -> list[str]:
    """docs/connectwise/REFERENCE.md §3: not confirmed which field the UI's "One-Time" sets, so any of them counts; we say which."""
    seen = []
    if billing_option(agreement, cycles) == ONE_TIME_OPTION:
        seen.append(f"billingCycle.billingOptions={ONE_TIME_OPTION}")
    if agreement.get("billOneTimeFlag"):
        seen.append("billOneTimeFlag=true")
    if agreement.get("oneTimeFlag"):
        seen.append("oneTimeFlag=true")
    return seen


def is_monthly(agreement: dict, cycles: dict[int, dict]) -> bool:
    option = billing_option(agreement, cycles)
    if option is not None:
        return option == MONTHLY_OPTION
    return same_name(ref_name(agreement, "billingCycle"), MONTHLY_OPTION)  # a cycle we could not resolve


def monthly_cycle(ctx: RunContext) -> dict | None:
    cycles = [c for c in ctx.get("billing_cycles") if c.get("billingOptions") == MONTHLY_OPTION]
    cycles.sort(key=lambda c: (not same_name(c.get("name"), "Monthly"), c.get("id")))
    return cycles[0] if cycles else None


def one_time_cycle(ctx: RunContext) -> dict | None:
    cycles = [c for c in ctx.get("billing_cycles") if c.get("billingOptions") == ONE_TIME_OPTION]
    cycles.sort(key=lambda c: (not same_name(c.get("name"), "One Time"), c.get("id")))
    return cycles[0] if cycles else None


def describe(agreement: dict) -> str:
    return f'Agreement "{agreement.get("name") or ""}" (id {agreement.get("id")})'


# -- choosing the target ---------------------------------------------------------------------------------


@dataclass
class Target:
    company_id: int
    motion: str
    how: str  # "explicit", "auto", "none", "ambiguous", "explicit_missing"
    agreement: dict | None = None
    candidates: list[dict] = field(default_factory=list)
    requested_id: int | None = None


def agreements_by_company(ctx: RunContext) -> dict[int, list[dict]]:
    def build() -> dict[int, list[dict]]:
        out: dict[int, list[dict]] = {}
        for a in ctx.get("agreements"):
            out.setdefault(ref_id(a, "company"), []).append(a)
        return out

    return ctx.remember("agreements_by_company", build)


def candidates_for(agreements: list[dict], motion: str, ctx: RunContext) -> list[dict]:
    """The agreements that could take the motion's seats, among the company's active top-level ones.

    Monthly/Azure: the recurring ones (a one-time agreement never takes monthly seats), narrowed by type name
    when that leaves at least one: Azure Plan seats go to an agreement whose type names Azure, monthly seats to one whose
    type does not (a customer with an "O365" and an "Azure Plan" agreement is not ambiguous). Annual: the
    one-time ones; when there is none, a single active agreement is still the target (and gets
    annual_not_one_time), several are no target at all (not_mapped: none of them is one-time).
    """
    fitting = [a for a in agreements if is_active(a, ctx.now) and not is_child(a)]
    cycles = cycles_by_id(ctx) if ctx.error_of("billing_cycles") is None else {}
    one_time, recurring = [], []
    for a in fitting:
        (one_time if one_time_signals(a, cycles) else recurring).append(a)
    if motion == ANNUAL:
        return one_time or (fitting if len(fitting) == 1 else [])
    azure, other = [], []
    for a in recurring:
        (azure if "azure" in ref_name(a, "type").casefold() else other).append(a)
    if motion == "azure":
        return azure or recurring
    return other or recurring


def select_targets(ctx: RunContext) -> list[Target]:
    """The target agreement of every chosen company (needs the agreements read; raises ResourceError)."""

    def build() -> list[Target]:
        by_company = agreements_by_company(ctx)
        by_id = ctx.remember("agreements_by_id", lambda: {a["id"]: a for a in ctx.get("agreements")})
        targets = []
        for chosen in ctx.choices.companies:
            cid = chosen.cw_company_id
            motion = chosen.motion if chosen.motion in MOTION_LABELS else "monthly"
            found = candidates_for(by_company.get(cid, []), motion, ctx)
            if chosen.agreement_id:
                agreement = by_id.get(chosen.agreement_id)
                if agreement is None or ref_id(agreement, "company") != cid:
                    targets.append(Target(cid, motion, "explicit_missing", None, found, chosen.agreement_id))
                else:
                    targets.append(Target(cid, motion, "explicit", agreement, found, chosen.agreement_id))
            elif len(found) == 1:
                targets.append(Target(cid, motion, "auto", found[0], found))
            elif not found:
                targets.append(Target(cid, motion, "none", None, found))
            else:
                targets.append(Target(cid, motion, "ambiguous", None, found))
        return targets

    return ctx.remember("targets", build)


def target_type_names(ctx: RunContext) -> set[str] | None:
    """Agreement types of the chosen companies' targets; None when the agreements could not be read."""
    if not ctx.choices.companies:
        return set()
    if ctx.error_of("agreements") is not None:
        return None
    return {
        ref_name(t.agreement, "type")
        for t in select_targets(ctx)
        if t.agreement and ref_name(t.agreement, "type")
    }


# -- the check ---------------------------------------------------------------------------------------------


def check(ctx: RunContext) -> StepOutcome:
    companies = {c["id"]: c for c in ctx.get("companies")}
    cycles = cycles_by_id(ctx)
    by_company = agreements_by_company(ctx)
    allowed = allowed_items(ctx)
    findings: list[Finding] = []
    per_company: list[dict] = []
    notes: list[str] = []
    if allowed is None:
        notes.append(
            "The role's Access Allowed list of agreement types could not be read, so agreement types were not "
            "checked."
        )

    for target in select_targets(ctx):
        company = companies.get(target.company_id)
        if company is None or company.get("deletedFlag"):
            # customers reports company_missing; here it only means no agreement can be created for it
            company = {"id": target.company_id, "name": f"company id {target.company_id}", "missing": True}
        cname = company.get("name") or f"company id {target.company_id}"
        fact = {
            "company_id": target.company_id,
            "company": cname,
            "motion": target.motion,
            "how": target.how,
            "agreement_id": (target.agreement or {}).get("id"),
            "candidates": [a["id"] for a in target.candidates],
        }
        per_company.append(fact)

        if target.how in ("none", "explicit_missing"):
            findings.append(_not_mapped(ctx, target, company))
        elif target.how == "ambiguous":
            findings.append(_ambiguous(target, cname))
        agreement = target.agreement
        if agreement is not None:
            findings.extend(_check_target(ctx, target, company, agreement, cycles, fact))
            if allowed is not None:
                type_name = ref_name(agreement, "type")
                if type_name and not agreement_type_allowed(allowed, type_name):
                    findings.append(_type_not_allowed(cname, agreement, type_name))
        findings.extend(_same_type(ctx, cname, by_company.get(target.company_id, [])))

    mapped = sum(1 for f in per_company if f["agreement_id"])
    summary = f"{mapped} of {len(per_company)} chosen companies have a target agreement."
    outcome = StepOutcome.from_findings(KEY, findings, summary, companies=per_company, notes=notes)
    unread = ctx.error_of("customize_items")
    if unread is not None and not isinstance(unread, Forbidden):
        # The Access Allowed list could not be read for a passing reason (5xx, a reset after the client's
        # retries): "no type_not_allowed" would then be a silent gap, so the step says clearly that it could not
        # check everything, and keeps what it did find. (A role that may not read the list is role.unreadable.)
        from .context import RESOURCES  # noqa: PLC0415
        from .runner import _read_error  # noqa: PLC0415 (the runner imports this module)

        error = _read_error(KEY, unread, RESOURCES["customize_items"])
        outcome = StepOutcome(
            KEY, Status.ERROR, [*error.findings, *findings], summary=error.summary, facts=outcome.facts
        )
    return outcome


def _fix_open(cname: str, agreement: dict | None) -> str:
    return FIX_OPEN.format(
        company=cname, agreement=f'agreement "{agreement.get("name")}"' if agreement else ""
    )


def _check_target(ctx, target: Target, company: dict, agreement: dict, cycles, fact: dict) -> list[Finding]:
    findings: list[Finding] = []
    cname = company.get("name") or ""
    subject = f"{describe(agreement)} of {cname}"
    record = {"path": "finance/agreements", "id": agreement["id"]}
    base = {"company_id": target.company_id, "agreement_id": agreement["id"], "motion": target.motion}
    if target.how == "auto":
        fact["note"] = f"{describe(agreement)} was chosen automatically: it is the only one that fits."

    reasons = inactive_reasons(agreement, ctx.now)
    if reasons:
        findings.append(
            Finding(
                codes.AGREEMENTS_NOT_ACTIVE,
                Severity.ERROR,
                subject=subject,
                explanation=(
                    f"The target agreement of {cname} is not active: {', '.join(reasons)}. The sync only writes "
                    "to active agreements."
                ),
                fix=(
                    f"{_fix_open(cname, agreement)} > set Status Active and clear the end date or the cancellation, "
                    "or choose another agreement for this customer here."
                ),
                record=record,
                data={**base, "reasons": reasons, "agreementStatus": agreement.get("agreementStatus")},
            )
        )
    if is_child(agreement):
        findings.append(
            Finding(
                codes.AGREEMENTS_CHILD_AGREEMENT,
                Severity.WARNING,
                subject=subject,
                explanation=(
                    f"The target agreement of {cname} is a child of another agreement. Child agreements are billed "
                    "through their parent, so seats may be invoiced differently than you expect."
                ),
                fix=f"{_fix_open(cname, agreement)} and check its parent agreement, or choose a top-level agreement here.",
                record=record,
                data={**base, "parent_id": ref_id(agreement, "parentAgreement")},
            )
        )

    if target.motion in RECURRING_MOTIONS:
        findings.extend(_recurring_findings(ctx, target, cname, agreement, subject, record, base))
    else:
        seen = one_time_signals(agreement, cycles)
        fact["one_time_seen"] = seen
        if not seen:
            findings.append(
                _annual_not_one_time(ctx, target, company, agreement, subject, record, base, cycles)
            )
    return findings


def _recurring_findings(ctx, target, cname, agreement, subject, record, base) -> list[Finding]:
    cycles = cycles_by_id(ctx)
    findings: list[Finding] = []
    label = MOTION_LABELS[target.motion]
    if not is_monthly(agreement, cycles):
        monthly = monthly_cycle(ctx)
        current = ref_name(agreement, "billingCycle") or "none"
        findings.append(
            Finding(
                codes.AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY,
                Severity.ERROR,
                subject=subject,
                explanation=(
                    f"{label} agreements are billed every month, but this agreement's billing cycle is {current} "
                    f"({billing_option(agreement, cycles) or 'unknown'}). Seats would be invoiced on the wrong "
                    "schedule."
                ),
                fix=f"{_fix_open(cname, agreement)} > set Billing Cycle to Monthly > Save.",
                repairable=monthly is not None,
                record=record,
                data={
                    **base,
                    "patch": [replace_operation("billingCycle", {"id": monthly["id"]})] if monthly else None,
                    "before": {"billingCycle": agreement.get("billingCycle")},
                    "after_label": (monthly or {}).get("name", "Monthly"),
                    "field_label": "Billing Cycle",
                    "before_label": current,
                },
            )
        )
    if agreement.get("invoicingCycle") != CALENDAR_YEAR:
        current = agreement.get("invoicingCycle") or "not set"
        findings.append(
            Finding(
                codes.AGREEMENTS_INVOICING_CYCLE_NOT_CALENDAR_YEAR,
                Severity.ERROR,
                subject=subject,
                explanation=(
                    f'The agreement\'s "Cycle Based On" is {_spaced(current)}. {label} seats must follow the '
                    "calendar year, so every month is invoiced in full and the sync's counts line up with invoices."
                ),
                fix=f"{_fix_open(cname, agreement)} > set Cycle Based On to Calendar Year > Save.",
                repairable=True,
                record=record,
                data={
                    **base,
                    "patch": [replace_operation("invoicingCycle", CALENDAR_YEAR)],
                    "before": {"invoicingCycle": agreement.get("invoicingCycle")},
                    "field_label": "Cycle Based On",
                    "before_label": _spaced(current),
                    "after_label": "Calendar Year",
                },
            )
        )
    if agreement.get("prorateFlag") is not True:
        findings.append(
            Finding(
                codes.AGREEMENTS_PRORATE_OFF,
                Severity.ERROR,
                subject=subject,
                explanation=(
                    '"Prorate Agreement" is off: seats added or removed during a month would be billed for the '
                    "whole month instead of the days used."
                ),
                fix=f"{_fix_open(cname, agreement)} > tick Prorate Agreement > Save.",
                repairable=True,
                record=record,
                data={
                    **base,
                    "patch": [replace_operation("prorateFlag", True)],
                    "before": {"prorateFlag": agreement.get("prorateFlag")},
                    "field_label": "Prorate Agreement",
                    "before_label": "off",
                    "after_label": "on",
                },
            )
        )
    return findings


def _spaced(value: str) -> str:
    return {"CalendarYear": "Calendar Year", "ContractYear": "Contract Year"}.get(value, value)


def _annual_create(ctx: RunContext, company: dict) -> dict | None:
    """What a one-time agreement for an annual customer would be created with, or None when we cannot tell."""
    cycle = one_time_cycle(ctx)
    type_ = annual_agreement_type(ctx, company["id"])
    if cycle is None or type_ is None:
        return None
    name = f"{company.get('name') or company['id']} Annual seats"[:100]
    return {
        "name": name,
        "type": {"id": type_["id"], "name": type_.get("name")},
        "company": {"id": company["id"]},
        "contact_id": ref_id(company, "defaultContact"),
        "billingCycle": {"id": cycle["id"], "name": cycle.get("name")},
    }


def annual_agreement_type(ctx: RunContext, company_id: int) -> dict | None:
    """The type for a new annual agreement: the type of one of the company's agreements, preferring "annual"
    in the name, else an active type named like annual, else the only allowed type; types the role's Access
    Allowed list refuses are skipped when that list is readable."""
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

    for pool in ([t for t in own if annualish(t)], [t for t in types if annualish(t)], own):
        if pool:
            return pool[0]
    return types[0] if len(types) == 1 else None


def _annual_not_one_time(ctx, target, company, agreement, subject, record, base, cycles) -> Finding:
    cname = company.get("name") or ""
    create = None
    if target.how == "auto" and not company.get("missing") and ctx.error_of("agreement_types") is None:
        create = _annual_create(ctx, company)
    option = billing_option(agreement, cycles) or "unknown"
    return Finding(
        codes.AGREEMENTS_ANNUAL_NOT_ONE_TIME,
        Severity.ERROR,
        subject=subject,
        explanation=(
            f"{cname} buys annual seats, which are invoiced once, but this agreement bills on a recurring cycle "
            f"({ref_name(agreement, 'billingCycle') or 'none'}, {option}) and has no one-time flag. Annual "
            "subscriptions need their own agreement with a one-time billing cycle."
        ),
        fix=(
            f"In ConnectWise go to Companies > Companies > {cname} > tab Agreements > + > create a separate "
            "agreement and, under Recurring Invoice Parameters, set the Billing Cycle to One-Time > Save; then "
            "choose it here."
        ),
        repairable=create is not None,
        record=record,
        data={**base, "seen": [], "billingOptions": option, "create": create},
    )


def _not_mapped(ctx: RunContext, target: Target, company: dict) -> Finding:
    """agreements.not_mapped, naming an Inquire level "My" on Finance > Agreements as the likely cause (issue 11:
    ConnectWise then answers only the member's own agreements)."""
    finding = _not_mapped_finding(ctx, target, company)
    note = inquire_my_note(ctx, "Finance", "Agreements")
    if not note:
        return finding
    return replace(
        finding,
        explanation=f"{finding.explanation} {note}",
        data={**finding.data, "likely_cause": "inquire_level_my"},
    )


def _not_mapped_finding(ctx: RunContext, target: Target, company: dict) -> Finding:
    cname = company.get("name") or ""
    create = None
    if target.how == "explicit_missing":
        explanation = (
            f"The agreement chosen for {cname} (id {target.requested_id}) no longer exists or belongs to another "
            "company."
        )
    elif target.motion == ANNUAL:
        explanation = (
            f"{cname} buys annual seats but has no active agreement with a one-time billing cycle for the sync to "
            "write to."
        )
        if not company.get("missing") and ctx.error_of("agreement_types") is None:
            create = _annual_create(ctx, company)
    else:
        explanation = (
            f"{cname} has no active agreement for the sync to write {MOTION_LABELS[target.motion]} seats to."
        )
    return Finding(
        codes.AGREEMENTS_NOT_MAPPED,
        Severity.ERROR,
        subject=f"Company id {target.company_id}"
        if company.get("missing")
        else f"Company {cname} (id {target.company_id})",
        explanation=explanation,
        fix=(
            f"In ConnectWise go to Companies > Companies > {cname} > tab Agreements > + > create the agreement "
            f"({'Billing Cycle One-Time' if target.motion == ANNUAL else 'Billing Cycle Monthly, Cycle Based On Calendar Year, Prorate Agreement ticked'}) "
            "> Save; then choose it here."
        ),
        repairable=create is not None,
        record={"path": "company/companies", "id": target.company_id},
        data={
            "company_id": target.company_id,
            "motion": target.motion,
            "requested_id": target.requested_id,
            "create": create,
        },
    )


def _ambiguous(target: Target, cname: str) -> Finding:
    listed = ", ".join(f'"{a.get("name")}" (id {a["id"]})' for a in target.candidates[:10])
    return Finding(
        codes.AGREEMENTS_AMBIGUOUS,
        Severity.ERROR,
        subject=f"Company {cname} (id {target.company_id})",
        explanation=(
            f"{cname} has {len(target.candidates)} active agreements that could take its "
            f"{MOTION_LABELS[target.motion]} seats: {listed}. We will not guess which one is billed."
        ),
        fix="Choose the target agreement for this customer on the Agreements page here.",
        record={"path": "company/companies", "id": target.company_id},
        data={"company_id": target.company_id, "candidates": [a["id"] for a in target.candidates]},
    )


def _type_not_allowed(cname: str, agreement: dict, type_name: str) -> Finding:
    return Finding(
        codes.AGREEMENTS_TYPE_NOT_ALLOWED,
        Severity.ERROR,
        subject=f"{describe(agreement)} of {cname}",
        explanation=(
            f'The agreement is of type "{type_name}", which the API member\'s security role does not allow, so the '
            "sync cannot update it."
        ),
        fix=(
            "In ConnectWise go to System > Security Roles > open the API member's security role > the "
            f'"customize" link next to Agreements > Access Allowed: add "{type_name}" > Save.'
        ),
        record={"path": "finance/agreements", "id": agreement["id"]},
        data={"agreement_id": agreement["id"], "type": type_name},
    )


def _same_type(ctx: RunContext, cname: str, agreements: list[dict]) -> list[Finding]:
    groups: dict[int, list[dict]] = {}
    for a in agreements:
        if is_active(a, ctx.now) and not is_child(a) and ref_id(a, "type") is not None:
            groups.setdefault(ref_id(a, "type"), []).append(a)
    findings = []
    for type_id, group in sorted(groups.items()):
        if len(group) < 2:
            continue
        type_name = ref_name(group[0], "type") or f"id {type_id}"
        listed = ", ".join(f'"{a.get("name")}" (id {a["id"]})' for a in group[:10])
        findings.append(
            Finding(
                codes.AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE,
                Severity.WARNING,
                subject=f'Company {cname}: {len(group)} active "{type_name}" agreements',
                explanation=(
                    f'{cname} has {len(group)} active agreements of type "{type_name}": {listed}. Seats can end up '
                    "on the wrong one, or be billed twice."
                ),
                fix=(
                    f"In ConnectWise go to Companies > Companies > {cname} > tab Agreements and cancel or end the "
                    "ones no longer billed, or make sure the agreement chosen here is the one invoiced."
                ),
                record={"path": "company/companies", "id": ref_id(group[0], "company")},
                data={"type_id": type_id, "type": type_name, "agreement_ids": [a["id"] for a in group]},
            )
        )
    return findings


# -- repairs -----------------------------------------------------------------------------------------------


def build_plan(ctx: RunContext, outcome: StepOutcome) -> list[PlannedOperation]:
    """One PATCH per repairable setting (with the value before), and for an annual customer without a one-time
    agreement one create, re-queried by company and name before it is sent."""
    ops = ops_from_patch_findings(outcome, what=lambda f: _what(f))
    creates = [f for f in outcome.findings if f.repairable and f.data.get("create")]
    contacts = _contacts_for(
        ctx, [f.data["create"]["company"]["id"] for f in creates if not f.data["create"]["contact_id"]]
    )
    planned: set[int] = set()
    for f in creates:
        spec = f.data["create"]
        company_id = spec["company"]["id"]
        contact_id = spec["contact_id"] or contacts.get(company_id)
        if contact_id is None or company_id in planned:
            continue  # ConnectWise requires a contact; the finding's click path covers this case
        planned.add(company_id)
        body = {
            "name": spec["name"],
            "type": {"id": spec["type"]["id"]},
            "company": {"id": company_id},
            "contact": {"id": contact_id},
            "billingCycle": {"id": spec["billingCycle"]["id"]},
            "startDate": ctx.now.strftime("%Y-%m-%dT00:00:00Z"),
        }
        ops.append(
            PlannedOperation(
                method="POST",
                path="finance/agreements",
                body=body,
                finding_code=f.code,
                subject=f.subject,
                description=(
                    f'Create the agreement "{spec["name"]}" of type "{spec["type"].get("name")}" for company id '
                    f'{company_id} with the one-time billing cycle "{spec["billingCycle"].get("name")}"'
                ),
                lookup={
                    "path": "finance/agreements",
                    "conditions": str(
                        cond.and_(cond.eq("company/id", company_id), cond.eq("name", spec["name"]))
                    ),
                },
            )
        )
    return ops


def _what(f: Finding) -> str:
    return "agreement " + f.subject.removeprefix("Agreement ").split(" of ", 1)[0]


def _contacts_for(ctx: RunContext, company_ids: list[int]) -> dict[int, int]:
    """A contact per company without a default contact: one batched read, never one per company."""
    if not company_ids:
        return {}
    chunks = split_in("company/id", company_ids)
    try:
        pages = ctx.client.map_concurrent(
            lambda c: ctx.client.list(
                "company/contacts", conditions=c, fields="id,company/id,defaultFlag", order_by="id asc"
            ),
            chunks,
        )
    except Forbidden:  # Companies > Contacts is not in the required role: no contact, no create
        return {}
    out: dict[int, int] = {}
    for contact in sorted(
        (c for page in pages for c in page), key=lambda c: (not c.get("defaultFlag"), c["id"])
    ):
        out.setdefault(ref_id(contact, "company"), contact["id"])
    return out
