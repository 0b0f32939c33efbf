"""Findings when a chosen company has no single target agreement: not mapped, ambiguous, no default contact.

A missing target is repairable when we can create the agreement (``agreement_creates``); an Inquire level "My"
on Finance > Agreements is named as the likely cause of an agreement the run cannot see (issue 11).
"""

from __future__ import annotations

from dataclasses import replace

from . import codes
from .agreement_creates import annual_create, cannot_repair, default_create, motion_defaults
from .agreement_facts import ANNUAL, describe
from .agreement_targets import Target
from .base import Finding, Severity
from .choices import MOTION_LABELS
from .context import RunContext
from .operations import not_repairable
from .role import inquire_my_note


def not_mapped_finding(ctx: RunContext, target: Target, company: dict) -> Finding:
    """agreements.not_mapped, naming an Inquire level "My" on Finance > Agreements as the likely cause (issue 11:
    ConnectWise then answers only the member's own agreements)."""
    finding = _not_mapped_base(ctx, target, company)
    note = inquire_my_note(ctx, "Finance", "Agreements")
    if not note:
        return finding
    return replace(
        finding,
        explanation=f"{finding.explanation} {note}",
        data={**finding.data, "likely_cause": "inquire_level_my"},
    )


def _not_mapped_base(ctx: RunContext, target: Target, company: dict) -> Finding:
    cname = company.get("name") or ""
    create, why_not = None, ""
    hidden = ", ".join(f'"{t.get("name")}" (id {t.get("id")})' for t in target.hidden_types)
    if target.how == "explicit_missing":
        explanation = (
            f"The agreement chosen for {cname} (id {target.requested_id}) no longer exists or belongs to another "
            "company."
        )
        if hidden:
            explanation += (
                f" It may also be hidden from the API member: the role's Access Allowed list lacks the agreement "
                f"types {hidden}."
            )
    elif target.how == "hidden":
        others = ", ".join(describe(a) for a in target.candidates[:5])
        explanation = (
            f"{cname} has no agreement we can see for its {MOTION_LABELS[target.motion]} seats, and the API "
            f"member's role does not allow the agreement types {hidden}: ConnectWise hides agreements of those "
            "types from it. We will not fall back to "
            + (f"another type's agreement ({others})" if others else "another type's agreement")
            + "; the sync could not write to a hidden agreement either."
        )
    else:
        if target.motion == ANNUAL:
            explanation = (
                f"{cname} buys annual seats but has no active agreement with a one-time billing cycle for the "
                "sync to write to."
            )
        else:
            explanation = f"{cname} has no active agreement for the sync to write {MOTION_LABELS[target.motion]} seats to."
        if company.get("missing"):
            why_not = "the company no longer exists in ConnectWise"
        elif ctx.error_of("agreement_types") is not None:
            why_not = "the agreement types could not be read"
        elif motion_defaults(ctx, target.motion):
            create, why_not = default_create(ctx, company, target.motion)
        elif target.motion == ANNUAL:
            create, why_not = annual_create(ctx, company)
        else:
            why_not = (
                f"no defaults are set for {MOTION_LABELS[target.motion]} agreements: set the agreement type and "
                "name pattern under Defaults for new agreements on the Agreements page (or repair_tenant "
                "--defaults FILE) and we create it"
            )
    if target.how == "hidden":
        fix = (
            'In ConnectWise go to System > Security Roles > open the API member\'s security role > the "customize" '
            f"link next to Agreements > Access Allowed: add {hidden} > Save; then run the check again."
        )
    else:
        fix = (
            f"In ConnectWise go to Companies > Companies > {cname} > tab Agreements > + > create the agreement "
            f"({'Billing Cycle One-Time' if target.motion == ANNUAL else 'Billing Cycle Monthly, Cycle Based On Calendar Year, Prorate Agreement ticked'}) "
            "> Save; then choose it here."
        )
    return Finding(
        codes.AGREEMENTS_NOT_MAPPED,
        Severity.ERROR,
        subject=f"Company id {target.company_id}"
        if company.get("missing")
        else f"Company {cname} (id {target.company_id})",
        explanation=explanation + (cannot_repair(why_not) if create is None else ""),
        fix=fix,
        repairable=create is not None,
        record={"path": "company/companies", "id": target.company_id},
        data={
            "company_id": target.company_id,
            "motion": target.motion,
            "requested_id": target.requested_id,
            "create": create,
            "hidden_types": [t.get("name") for t in target.hidden_types],
            **not_repairable(why_not),
        },
    )


def no_default_contact_finding(target: Target, company: dict) -> Finding:
    """agreements.no_default_contact: the agreement we would create needs a contact, and the company has no
    Default Contact (SPEC ``Company.defaultContact``; ``Agreement.contact`` is required on create)."""
    cname = company.get("name") or f"company id {target.company_id}"
    return Finding(
        codes.AGREEMENTS_NO_DEFAULT_CONTACT,
        Severity.ERROR,
        subject=f"Company {cname} (id {target.company_id})",
        explanation=(
            f"We would create {cname}'s {MOTION_LABELS[target.motion]} agreement, but ConnectWise requires a contact "
            "on a new agreement and the company has no Default Contact to use."
        ),
        fix=(
            f"In ConnectWise go to Companies > Companies > {cname} > set Default Contact (or open one of its "
            "contacts and tick Default Contact) > Save; then run the check again."
        ),
        record={"path": "company/companies", "id": target.company_id},
        data={"company_id": target.company_id, "motion": target.motion},
    )


def ambiguous_finding(target: Target, cname: str) -> Finding:
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
