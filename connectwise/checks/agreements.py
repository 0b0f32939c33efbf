"""Step 6, agreements: each chosen company has one target agreement, set up for its billing motion.

Monthly and Azure Plan: billing cycle Monthly, ``invoicingCycle`` CalendarYear ("Cycle Based On"), ``prorateFlag``
("Prorate Agreement"). Annual: a one-time billing cycle (docs/connectwise/REFERENCE.md §3). The target is the partner's explicit
choice, else the single candidate that fits. All agreements come from one paged read shared with the customers
step: never one call per company or per agreement.

This module is the step: ``needs``, ``check``, ``blocked_reason``, ``write_needs``, ``plan_operations`` and the
live type options. Its rules live in helper modules beside it: ``agreement_facts`` (one agreement's dates, cycle,
type), ``agreement_targets`` (the candidate rule and the target of each company), ``agreement_findings`` and
``agreement_mapping`` (what the step says), ``agreement_creates`` (new agreements), ``agreement_defaults`` (the
partner's defaults for them).
"""

from __future__ import annotations

import functools

from connectwise.errors import Forbidden

from . import agreement_defaults
from .agreement_creates import NO_DEFAULT_CONTACT, create_operation
from .agreement_facts import cycles_by_id
from .agreement_findings import same_type_findings, target_findings, type_not_allowed_finding
from .agreement_mapping import ambiguous_finding, no_default_contact_finding, not_mapped_finding
from .agreement_targets import (
    directory_candidates as directory_candidates,  # docs/INTERFACES.md: importable here
)
from .agreement_targets import fitting_motions as fitting_motions  # docs/INTERFACES.md: importable here
from .agreement_targets import select_targets, sorted_by_company
from .base import Finding, Status, StepOutcome
from .context import RESOURCES, ResourceError, RunContext, companies_by_id, ref_name
from .failures import read_error
from .operations import PlannedOperation, ops_from_patch_findings, skip_repair
from .role import agreement_type_allowed, allowed_items

KEY = "agreements"


def needs(choices) -> frozenset[str]:
    # my_security: an Inquire level "My" is the likely cause of an agreement the run cannot see
    keys = {"agreements", "billing_cycles", "companies", "customize_items", "agreement_types", "my_security"}
    return frozenset(keys)


def check(ctx: RunContext) -> StepOutcome:
    companies = companies_by_id(ctx)
    cycles = cycles_by_id(ctx)
    sorted_agreements = sorted_by_company(ctx)  # company id -> its agreements, sorted by the candidate rule
    allowed = allowed_items(ctx)
    findings: list[Finding] = []
    per_company: list[dict] = []
    notes: list[str] = []
    if allowed is None:
        notes.append(
            "The role's Access Allowed list of agreement types could not be read, so agreement types were not "
            "checked."
        )

    type_allowed = functools.lru_cache(maxsize=None)(lambda name: agreement_type_allowed(allowed, name))
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

        if target.how in ("none", "explicit_missing", "hidden"):
            findings.append(not_mapped_finding(ctx, target, company))
        elif target.how == "ambiguous":
            findings.append(ambiguous_finding(target, cname))
        agreement = target.agreement
        if agreement is not None:
            findings.extend(target_findings(ctx, target, company, agreement, cycles, fact))
            if allowed is not None:
                type_name = ref_name(agreement, "type")
                if type_name and not type_allowed(type_name):
                    findings.append(type_not_allowed_finding(cname, agreement, type_name))
        if findings and findings[-1].data.get("not_repairable") == NO_DEFAULT_CONTACT:
            findings.append(no_default_contact_finding(target, company))
        sorted_out = sorted_agreements.get(target.company_id)
        if sorted_out is not None and len(sorted_out.groups[0]) > 1:  # several active top-level agreements
            findings.extend(same_type_findings(ctx, cname, sorted_out.agreements, sorted_out.groups[0]))

    mapped = sum(1 for f in per_company if f["agreement_id"])
    summary = f"{mapped} of {len(per_company)} chosen companies have a target agreement."
    extra = {}
    if ctx.error_of("agreement_types") is None:
        # What the Defaults for new agreements form offers: every type, marked allowed by the role or not.
        extra["agreement_types"] = agreement_defaults.type_options(
            ctx.get("agreement_types"),
            allowed,
            None if allowed is None else (lambda name: agreement_type_allowed(allowed, name)),
        )
    outcome = StepOutcome.from_findings(KEY, findings, summary, companies=per_company, notes=notes, **extra)
    unread = ctx.error_of("customize_items")
    if unread is not None and not isinstance(unread, Forbidden):
        # The Access Allowed list could not be read for a passing reason (5xx, a reset after the client's
        # retries): "no type_not_allowed" would then be a silent gap, so the step says clearly that it could not
        # check everything, and keeps what it did find. (A role that may not read the list is role.unreadable.)
        error = read_error(KEY, unread, RESOURCES["customize_items"])
        outcome = StepOutcome(
            KEY, Status.ERROR, [*error.findings, *findings], summary=error.summary, facts=outcome.facts
        )
    return outcome


def blocked_reason(choices) -> str | None:
    """The agreements step checks the chosen companies' agreements: without a chosen company there is nothing to
    check, and the step is blocked (not passed) until one is chosen."""
    if not choices.companies:
        return "Blocked until at least one company is chosen on the Customers step."
    return None


def write_needs(finding: Finding) -> tuple[tuple[str, str], str] | None:
    """The security-role right a repair of ``finding`` writes with (docs/connectwise/REFERENCE.md §2, PRODUCT.md's
    guard table): a missing agreement is created (Add), an existing one edited (Edit)."""
    if not finding.repairable:
        return None
    return ("Finance", "Agreements"), "addLevel" if finding.data.get("create") else "editLevel"


def plan_operations(ctx: RunContext, outcome: StepOutcome) -> list[PlannedOperation]:
    """One PATCH per repairable setting (with the value before), and one create per chosen company without a
    fitting agreement (an annual customer without a one-time agreement; with the partner's defaults, any motion:
    issue 18). A create is re-queried by company, type and name before it is sent, and a company gets at most one
    create per plan (never two agreements for one company and motion)."""
    ops = ops_from_patch_findings(outcome, what=lambda f: _what(f))
    planned: set[int] = set()
    for f in outcome.findings:
        spec = f.data.get("create") if f.repairable else None
        if not spec:
            continue
        company_id = spec["company"]["id"]
        if company_id in planned:
            continue
        if spec.get("contact_id") is None:
            # ConnectWise requires a contact on create (SPEC Agreement.required): say so, never drop it silently.
            skip_repair(ctx, f, NO_DEFAULT_CONTACT)
            continue
        planned.add(company_id)
        ops.append(create_operation(f, spec, ctx.now))
    return ops


def _what(f: Finding) -> str:
    return "agreement " + f.subject.removeprefix("Agreement ").split(" of ", 1)[0]


def agreement_type_options(client, choices) -> list[dict]:
    """Every agreement type with whether the API member's role allows it (``agreement_defaults.type_options``),
    read now: two small reads (``finance/agreements/types``, ``system/mySecurity/customizeItems``). Raises the
    ConnectWise error when the types cannot be read; an unreadable Access Allowed list marks every type allowed
    (the agreements step then says the list was not checked)."""
    ctx = RunContext(client, choices)
    ctx.prefetch({"agreement_types", "customize_items"})
    try:
        types = ctx.get("agreement_types")
    except ResourceError as exc:
        raise exc.cause from None
    allowed = allowed_items(ctx)
    return agreement_defaults.type_options(
        types, allowed, None if allowed is None else (lambda name: agreement_type_allowed(allowed, name))
    )
