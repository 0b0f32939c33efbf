"""Findings about a company's target agreement: its dates and status, its billing settings, its type.

``target_findings`` is everything the agreements step says about the agreement a company's seats go to (not
started, not active, child, the Monthly / Calendar Year / prorate settings of recurring motions, the one-time
setting of annual ones, a type fallback); ``type_not_allowed_finding`` and ``same_type_findings`` the role's
Access Allowed list and duplicate active agreements. Repairable settings carry their PATCH (``data.patch``).
"""

from __future__ import annotations

from connectwise.client import replace_operation
from connectwise.labels import field_label

from . import codes
from .agreement_creates import NO_MONTHLY_CYCLE, annual_create, cannot_repair, default_create, motion_defaults
from .agreement_facts import (
    ANNUAL,
    CALENDAR_YEAR,
    RECURRING_MOTIONS,
    billing_option,
    cycle_label,
    cycles_by_id,
    describe,
    first_billing_day,
    inactive_reasons,
    is_active,
    is_child,
    is_monthly,
    monthly_cycle,
    not_started_reasons,
    one_time_signals,
)
from .agreement_targets import Target, active_top_level
from .base import Finding, Severity
from .choices import MOTION_LABELS
from .context import RunContext, ref_id, ref_name
from .operations import not_repairable

FIX_OPEN = "In ConnectWise go to Companies > Companies > {company} > tab Agreements > open {agreement}"


def _fix_open(cname: str, agreement: dict | None) -> str:
    return FIX_OPEN.format(
        company=cname, agreement=f'agreement "{agreement.get("name")}"' if agreement else ""
    )


def target_findings(ctx, target: Target, company: dict, agreement: dict, cycles, fact: dict) -> list[Finding]:
    """What the agreements step says about ``agreement``, the target of ``company`` (``target``): not started,
    not active, a child, the settings of its billing motion, a type fallback. ``cycles``: billing cycles by id.
    Adds what the page shows to ``fact`` (the company's row of ``facts["companies"]``)."""
    if target.how == "auto":
        fact["note"] = f"{describe(agreement)} was chosen automatically: it is the only one that fits."
    if _settings_fit(ctx, target, agreement, cycles, fact):
        return []  # the common case of a large healthy tenant: nothing to say, nothing built
    findings: list[Finding] = []
    cname = company.get("name") or ""
    subject = f"{describe(agreement)} of {cname}"
    record = {"path": "finance/agreements", "id": agreement["id"]}
    base = {"company_id": target.company_id, "agreement_id": agreement["id"], "motion": target.motion}
    if target.how == "auto" and target.fell_back and target.motion in RECURRING_MOTIONS:
        findings.append(_type_fallback(target, cname, agreement, subject, record, base))

    reasons = inactive_reasons(agreement, ctx.now)
    pending = [] if reasons else not_started_reasons(agreement, ctx.now)
    if pending:
        day = first_billing_day(agreement)
        fact["billing_starts"] = day
        findings.append(
            Finding(
                codes.AGREEMENTS_NOT_STARTED,
                Severity.ERROR,
                subject=subject,
                explanation=(
                    f"The target agreement of {cname} has not started: {', '.join(pending)}. Until then the sync "
                    "cannot bill it: ConnectWise refuses additions dated before an agreement's billing start, "
                    "and no prorated charge is created."
                ),
                fix=(
                    f"{_fix_open(cname, agreement)} > set Start Date and Billing Start Date to the first day the "
                    f"customer's seats are billed (today or earlier) > Save; or wait until {day} and run the check "
                    "again."
                ),
                record=record,
                data={
                    **base,
                    "reasons": pending,
                    "billing_starts": day,
                    "startDate": agreement.get("startDate"),
                    "billStartDate": agreement.get("billStartDate"),
                },
            )
        )
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


def _settings_fit(ctx, target: Target, agreement: dict, cycles, fact: dict) -> bool:
    """True when ``target_findings`` has nothing to say about ``agreement``: the same tests, asked without
    building a finding (a large healthy tenant asks for 5,000 targets per run, benchmark verify). Sets
    ``fact["one_time_seen"]`` for annual seats, as ``target_findings`` does."""
    if target.how == "auto" and target.fell_back and target.motion in RECURRING_MOTIONS:
        return False
    if not (target.active_top_level and agreement is target.agreement) and (
        not is_active(agreement, ctx.now) or is_child(agreement)
    ):
        return False
    if target.motion in RECURRING_MOTIONS:
        return (
            is_monthly(agreement, cycles)
            and agreement.get("invoicingCycle") == CALENDAR_YEAR
            and agreement.get("prorateFlag") is True
        )
    seen = one_time_signals(agreement, cycles)
    fact["one_time_seen"] = seen
    return bool(seen)


def _recurring_findings(ctx, target, cname, agreement, subject, record, base) -> list[Finding]:
    cycles = cycles_by_id(ctx)
    findings: list[Finding] = []
    label = MOTION_LABELS[target.motion]
    if not is_monthly(agreement, cycles):
        monthly = monthly_cycle(ctx)
        current = cycle_label(agreement.get("billingCycle"), cycles)
        target_label = cycle_label(monthly, cycles) if monthly else "a Monthly billing cycle"
        findings.append(
            Finding(
                codes.AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY,
                Severity.ERROR,
                subject=subject,
                explanation=(
                    f"{label} agreements are billed every month, but this agreement's billing cycle is {current}. "
                    "Seats would be invoiced on the wrong schedule."
                    + cannot_repair("" if monthly else NO_MONTHLY_CYCLE)
                ),
                fix=f"{_fix_open(cname, agreement)} > set Billing Cycle to {target_label} > Save.",
                repairable=monthly is not None,
                record=record,
                data={
                    **base,
                    "patch": [replace_operation("billingCycle", {"id": monthly["id"]})] if monthly else None,
                    "before": {"billingCycle": agreement.get("billingCycle")},
                    "after_label": target_label,
                    "field_label": field_label("billingCycle"),
                    "before_label": current,
                    **not_repairable(
                        ""
                        if monthly
                        else "ConnectWise has no billing cycle that recurs Monthly to switch it to"
                    ),
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
                    "field_label": field_label("invoicingCycle"),
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
                    "field_label": field_label("prorateFlag"),
                    "before_label": "off",
                    "after_label": "on",
                },
            )
        )
    return findings


def _type_fallback(
    target: Target, cname: str, agreement: dict, subject: str, record: dict, base: dict
) -> Finding:
    label = MOTION_LABELS[target.motion]
    type_name = ref_name(agreement, "type") or "unknown"
    wanted = "an Azure agreement type" if target.motion == "azure" else "a type that is not Azure"
    return Finding(
        codes.AGREEMENTS_TYPE_FALLBACK,
        Severity.WARNING,
        subject=subject,
        explanation=(
            f"{cname} has no active agreement of {wanted}, so its {label} seats were given to its only other "
            f'recurring agreement, of type "{type_name}". If the customer has an agreement we cannot see (its type '
            "not in the API member's Access Allowed list), this would be the wrong agreement."
        ),
        fix=f"Check {cname}'s agreements in ConnectWise and choose the target agreement here explicitly.",
        record=record,
        data={**base, "type": type_name, "fell_back": True},
    )


def _annual_not_one_time(ctx, target, company, agreement, subject, record, base, cycles) -> Finding:
    cname = company.get("name") or ""
    create, why_not = None, ""
    if target.how != "auto":
        why_not = (
            "the agreement was chosen by hand here; choose another or clear the choice to let us create one"
        )
    elif company.get("missing"):
        why_not = "the company no longer exists in ConnectWise"
    elif ctx.error_of("agreement_types") is not None:
        why_not = "the agreement types could not be read"
    elif motion_defaults(ctx, ANNUAL):
        create, why_not = default_create(ctx, company, ANNUAL)
    else:
        create, why_not = annual_create(ctx, company)
    option = billing_option(agreement, cycles) or "unknown"
    return Finding(
        codes.AGREEMENTS_ANNUAL_NOT_ONE_TIME,
        Severity.ERROR,
        subject=subject,
        explanation=(
            f"{cname} buys annual seats, which are invoiced once, but this agreement bills on a recurring cycle "
            f"({ref_name(agreement, 'billingCycle') or 'none'}, {option}) and has no one-time flag. Annual "
            "subscriptions need their own agreement with a one-time billing cycle." + cannot_repair(why_not)
        ),
        fix=(
            f"In ConnectWise go to Companies > Companies > {cname} > tab Agreements > + > create a separate "
            "agreement and, under Recurring Invoice Parameters, set the Billing Cycle to One-Time > Save; then "
            "choose it here."
        ),
        repairable=create is not None,
        record=record,
        data={**base, "seen": [], "billingOptions": option, "create": create, **not_repairable(why_not)},
    )


def _spaced(value: str) -> str:
    return {"CalendarYear": "Calendar Year", "ContractYear": "Contract Year"}.get(value, value)


def type_not_allowed_finding(cname: str, agreement: dict, type_name: str) -> Finding:
    return Finding(
        codes.AGREEMENTS_TYPE_NOT_ALLOWED,
        Severity.ERROR,
        subject=f"{describe(agreement)} of {cname}",
        explanation=(
            f'The agreement is of type "{type_name}" (type id {ref_id(agreement, "type")}), which the API member\'s '
            "security role does not allow, so the sync cannot update it."
        ),
        fix=(
            "In ConnectWise go to System > Security Roles > open the API member's security role > the "
            f'"customize" link next to Agreements > Access Allowed: add "{type_name}" > Save.'
        ),
        record={"path": "finance/agreements", "id": agreement["id"]},
        data={"agreement_id": agreement["id"], "type": type_name},
    )


def same_type_findings(
    ctx: RunContext, cname: str, agreements: list[dict], active: list[dict] | None = None
) -> list[Finding]:
    """One warning per agreement type of which the company (``cname``, its ``agreements``) has several active
    top-level agreements (``active``, when the caller has them: ``active_top_level(agreements, ctx)``)."""
    if active is None:
        active = active_top_level(agreements, ctx)
    if len(active) < 2:
        return []
    if len(active) == 2:  # the common case of several: two agreements, of different types or none
        first, second = ref_id(active[0], "type"), ref_id(active[1], "type")
        if first is None or second is None or first != second:
            return []
    groups: dict[int, list[dict]] = {}
    for a in active:
        type_id = ref_id(a, "type")
        if type_id is not None:
            groups.setdefault(type_id, []).append(a)
    findings = []
    for type_id, group in sorted(groups.items()):
        if len(group) < 2:
            continue
        type_name = ref_name(group[0], "type") or f"id {type_id}"
        type_label = f'"{type_name}" (type id {type_id})'
        listed = ", ".join(f'"{a.get("name")}" (id {a["id"]})' for a in group[:10])
        findings.append(
            Finding(
                codes.AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE,
                Severity.WARNING,
                subject=f"Company {cname}: {len(group)} active {type_label} agreements",
                explanation=(
                    f"{cname} has {len(group)} active agreements of type {type_label}: {listed}. Seats can end up "
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
