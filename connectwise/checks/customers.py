"""Step 5, customers: the companies the partner chose exist, are real customers, and have an active agreement.

Cost: one paged read of all companies, one of company statuses and one of all agreements (shared with the
agreements step), never a call per company. The same read refreshes the company directory behind the customers
page (``facts["directory"]``), so the page never calls ConnectWise itself. Building that list is most of the
step's work for a large tenant (5,000 companies, 10,000 agreements); when the data it is built from and the time
of day relative to every agreement date are those of the list the tenant holds (``facts["directory_source"]``,
compared with ``ctx.hints.directory_source``), the list would come out the same and is not built again.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache

from . import codes
from .agreement_facts import (
    agreements_by_company,
    cycles_by_id,
    is_active,
    is_pending,
    not_started_reasons,
    one_time_signals,
)
from .agreement_facts import describe as describe_agreement
from .agreement_targets import fitting_motions, sorted_by_company
from .base import Finding, Severity, StepOutcome
from .context import RunContext, companies_by_id, ref_id, ref_name
from .directory_key import DIRECTORY_VERSION as DIRECTORY_VERSION  # docs/INTERFACES.md: importable here
from .directory_key import directory_source
from .names import normalize_company_name
from .role import inquire_my_note

KEY = "customers"

# Status names that often mean "not (yet) a customer" (docs/connectwise/REFERENCE.md §7: prospect and "not approved" companies are a
# common source of wrong matches). Statuses are the partner's own vocabulary (renamed, custom, deleted), so the
# name never decides: ConnectWise's flags do (``inactiveFlag``, ``disallowSavingFlag``), and a name with one of
# these words, on a status the flags call active, is at most a warning (customers.status_name_suspect). A name
# that also says "active" (e.g. "Active - Lead Tech Assigned") gets no warning. Issue 17.
PROSPECT_LIKE_STATUSES: tuple[str, ...] = (
    "prospect",
    "not approved",
    "lead",
    "suspect",
    "pending approval",
    "inactive",
    "former client",
    "former customer",
    "lost",
    "do not use",
)

FIX_COMPANY = "In ConnectWise go to Companies > Companies > search {name} > open it"


def needs(choices) -> frozenset[str]:
    # my_security: an Inquire level "My" is the likely cause of a company or agreement the run cannot see;
    # billing_cycles: the directory says which agreements bill one time by the cycle's billingOptions, not its
    # name, and which motions each agreement fits (agreement_targets.candidates_for)
    return frozenset({"companies", "company_statuses", "agreements", "my_security", "billing_cycles"})


def _norm(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


_PROSPECT_LIKE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in PROSPECT_LIKE_STATUSES) + r")\b")


# Cached: a tenant has a handful of status names but thousands of companies, and this runs twice per company
# (the check and the directory); one regex per word per company was most of a 5,000-company check's CPU time.
@lru_cache(maxsize=1024)
def prospect_like(status_name: str | None) -> bool:
    return _PROSPECT_LIKE.search(_norm(status_name)) is not None


_ACTIVE_WORD = re.compile(r"(?<!in)\bactive\b")


def inactive_reason(company: dict, statuses: dict[int, dict]) -> str | None:
    """Why ConnectWise's own flags say the company is not an active customer, or None.

    The company's status record decides: ``inactiveFlag`` (an inactive status) or ``disallowSavingFlag`` (ConnectWise
    refuses to save records for companies with this status, so the sync's writes would fail). SPEC
    ``CompanyStatus``; the status's name is never used here (see ``status_name_suspect``).
    """
    status = statuses.get(ref_id(company, "status"))
    name = ref_name(company, "status") or (status or {}).get("name") or ""
    if status is not None and status.get("inactiveFlag"):
        return f'its status "{name}" (id {status.get("id")}) is an inactive status'
    if status is not None and status.get("disallowSavingFlag"):
        return (
            f'its status "{name}" (id {status.get("id")}) has Disallow Saving ticked, so ConnectWise refuses to '
            "save records for it"
        )
    return None


def status_name_suspect(company: dict, statuses: dict[int, dict]) -> str | None:
    """A warning reason when the status's flags say active but its name sounds like "not a customer yet"."""
    if inactive_reason(company, statuses) is not None:
        return None
    name = ref_name(company, "status") or (statuses.get(ref_id(company, "status")) or {}).get("name") or ""
    if not prospect_like(name) or _ACTIVE_WORD.search(_norm(name)):
        return None
    return f'its status "{name}" is flagged active in ConnectWise, but its name sounds like it is not a customer yet'


def check(ctx: RunContext) -> StepOutcome:
    companies = ctx.get("companies")
    statuses = {s["id"]: s for s in ctx.get("company_statuses")}
    live = [c for c in companies if not c.get("deletedFlag")]
    by_id = companies_by_id(ctx)
    by_normalized: dict[str, list[dict]] = {}
    normalized: dict[int, str] = {}  # company id -> its normalized name, computed once
    for c in live:
        key = normalized[c["id"]] = normalize_company_name(c.get("name") or "")
        by_normalized.setdefault(key, []).append(c)

    findings: list[Finding] = []
    chosen = ctx.choices.companies
    if not chosen:
        findings.append(
            Finding(
                codes.CUSTOMERS_NONE_SELECTED,
                Severity.ERROR,
                subject="Customers",
                explanation=(
                    "No ConnectWise company has been chosen for the sync yet, so it has no customer to write seats "
                    "for."
                ),
                fix="Choose your customers' companies on the Customers page here (search, or import a CSV).",
            )
        )
    by_company = agreements_by_company(ctx) if chosen else {}
    # Each company's sorting (agreement_targets): its any_active says whether the company has an active agreement.
    sorted_out = sorted_by_company(ctx) if chosen else {}
    status_reasons = _StatusReasons(statuses)
    for choice in chosen:
        company = by_id.get(choice.cw_company_id)
        if company is None or company.get("deletedFlag"):
            findings.append(_missing(choice.cw_company_id, company, ctx))
            continue
        cid = company["id"]
        company_sorted = sorted_out.get(cid)
        findings.extend(
            _check_company(
                ctx,
                company,
                status_reasons,
                by_company.get(cid, []),
                by_normalized.get(normalized[cid], []),
                company_sorted is not None and bool(company_sorted.any_active),
            )
        )

    findings.extend(_unmatched(ctx.choices.billing_customers, by_normalized))

    summary = f"{len(chosen)} companies chosen out of {len(live)} in ConnectWise."
    source = directory_source(ctx)
    facts: dict = {"chosen": len(chosen), "companies": len(live), "directory_source": source}
    if ctx.hints is None or source != ctx.hints.directory_source:
        cycles = cycles_by_id(ctx) if ctx.error_of("billing_cycles") is None else {}
        by_company = agreements_by_company(ctx)
        facts["directory"] = [
            _directory_row(ctx, c, statuses, by_company.get(c["id"], []), cycles) for c in live
        ]
    return StepOutcome.from_findings(KEY, findings, summary, **facts)


def describe(company: dict) -> str:
    return f'Company "{company.get("name") or company.get("identifier") or ""}" (id {company["id"]})'


def _missing(company_id: int, company: dict | None, ctx: RunContext) -> Finding:
    deleted = company is not None
    note = None if deleted else inquire_my_note(ctx, "Companies", "Company Maintenance")
    finding = Finding(
        codes.CUSTOMERS_COMPANY_MISSING,
        Severity.ERROR,
        subject=describe(company) if deleted else f"Company id {company_id}",
        explanation=(
            "This company was chosen for the sync but has since been deleted in ConnectWise."
            if deleted
            else "This company was chosen for the sync but ConnectWise no longer has it (deleted or merged)."
        ),
        fix=(
            "Restore it from the ConnectWise recycle bin if it was deleted by mistake, or remove it here and choose "
            "the company that replaced it on the Customers page."
        ),
        record={"path": "company/companies", "id": company_id},
        data={"company_id": company_id, "deleted": deleted},
    )
    return _with_note(finding, note)


def _with_note(finding: Finding, note: str | None) -> Finding:
    """The finding with the "My" inquire level named as the likely cause (issue 11), when there is one."""
    if not note:
        return finding
    return dataclasses.replace(
        finding,
        explanation=f"{finding.explanation} {note}",
        data={**finding.data, "likely_cause": "inquire_level_my"},
    )


class _StatusReasons:
    """``inactive_reason`` and ``status_name_suspect`` of a company, asked once per status: a tenant has a
    handful of statuses but thousands of companies (benchmark verify). Keyed by the company's status reference
    (id and name), which is all either function reads of the company."""

    def __init__(self, statuses: dict[int, dict]) -> None:
        self.statuses = statuses
        self._seen: dict[tuple, tuple[str | None, str | None]] = {}

    def of(self, company: dict) -> tuple[str | None, str | None]:
        """``(inactive_reason, status_name_suspect)`` of ``company``."""
        status = company.get("status")
        key = (
            (status.get("id"), status.get("name"), status.get("identifier"))
            if status.__class__ is dict
            else ()
        )
        hit = self._seen.get(key)
        if hit is None:
            hit = self._seen[key] = (
                inactive_reason(company, self.statuses),
                status_name_suspect(company, self.statuses),
            )
        return hit


def _check_company(ctx, company, status_reasons, agreements, same_name, has_active) -> list[Finding]:
    """The customers step's findings about one chosen ``company``: ``agreements`` are its agreements,
    ``same_name`` the live companies with its normalized name (itself included), ``has_active`` whether one of
    its agreements is active."""
    findings: list[Finding] = []
    name = company.get("name") or ""
    record = {"path": "company/companies", "id": company["id"]}
    reason, suspect = status_reasons.of(company)
    if reason:
        findings.append(
            Finding(
                codes.CUSTOMERS_COMPANY_INACTIVE,
                Severity.ERROR,
                subject=describe(company),
                explanation=(
                    f"This company was chosen for the sync, but {reason}. Seats for it would be billed to a "
                    "company ConnectWise does not treat as an active customer."
                ),
                fix=(
                    f"{FIX_COMPANY.format(name=name)} > set Status to your active customer status > Save; or, if "
                    "this is a duplicate, choose the active company here instead."
                ),
                record=record,
                data={"company_id": company["id"], "status": ref_name(company, "status")},
            )
        )
    if suspect:
        findings.append(
            Finding(
                codes.CUSTOMERS_STATUS_NAME_SUSPECT,
                Severity.WARNING,
                subject=describe(company),
                explanation=(
                    f"{suspect}. We go by ConnectWise's flags, so this company counts as an active customer; make "
                    "sure it is one you invoice."
                ),
                fix=(
                    f"Nothing to change if it is a customer. Otherwise {FIX_COMPANY.format(name=name)} > set its "
                    "Status, or tick Inactive on the status under System > Setup Tables > Company Status."
                ),
                record=record,
                data={"company_id": company["id"], "status": ref_name(company, "status")},
            )
        )
    if not has_active:
        note = inquire_my_note(ctx, "Finance", "Agreements")
        findings.append(
            _with_note(
                Finding(
                    codes.CUSTOMERS_NO_ACTIVE_AGREEMENT,
                    Severity.ERROR,
                    subject=describe(company),
                    explanation=(
                        f"{name} has no active agreement ({len(agreements)} agreements in total, none active), so the "
                        "sync has nowhere to write its seats."
                        + "".join(
                            f" {describe_agreement(a)} has not started: {', '.join(not_started_reasons(a, ctx.now))}."
                            for a in agreements
                            if is_pending(a, ctx.now)
                        )
                    ),
                    fix=(
                        f"{FIX_COMPANY.format(name=name)} > tab Agreements: create the agreement (+) or set the existing "
                        "one's status to Active."
                    ),
                    record=record,
                    data={"company_id": company["id"], "agreements": len(agreements)},
                ),
                note,
            )
        )
    same = [c for c in same_name if c["id"] != company["id"]] if len(same_name) > 1 else []
    if same:
        listed = ", ".join(describe(c) for c in same[:5])
        findings.append(
            Finding(
                codes.CUSTOMERS_DUPLICATE_NAME,
                Severity.WARNING,
                subject=describe(company),
                explanation=(
                    f"Another company has the same name once case, punctuation and legal forms such as Ltd or "
                    f"Limited are ignored: {listed}. Make sure the one chosen is the one you invoice."
                ),
                fix=(
                    "In ConnectWise go to Companies > Companies > search the name and compare them; merge or mark "
                    "the duplicate inactive, or choose the right one here."
                ),
                record=record,
                data={"company_id": company["id"], "duplicates": [c["id"] for c in same]},
            )
        )
    return findings


def _unmatched(billing_customers: list[str], by_normalized: dict[str, list[dict]]) -> list[Finding]:
    findings = []
    for name in billing_customers or []:
        if by_normalized.get(normalize_company_name(name)):
            continue
        findings.append(
            Finding(
                codes.CUSTOMERS_UNMATCHED,
                Severity.WARNING,
                subject=f'Billing customer "{name}"',
                explanation=(
                    f'The billing customer "{name}" from your import has no ConnectWise company with the same name, '
                    "so its seats have nowhere to go."
                ),
                fix=(
                    "Match it to a company on the Customers page here, or create the company in ConnectWise under "
                    "Companies > Companies > + and import again."
                ),
                # fix_step / fix_anchor: the wizard page (and its section) where the partner fixes it in this product
                data={
                    "name": name,
                    "normalized": normalize_company_name(name),
                    "fix_step": "customers",
                    "fix_anchor": "billing",
                },
            )
        )
    return findings


def _directory_row(
    ctx: RunContext, company: dict, statuses: dict[int, dict], agreements: list[dict], cycles: dict[int, dict]
) -> dict:
    """One row of the cached company list behind the customers page (onboarding stores it). Each agreement's
    ``fits`` lists the motions it is a candidate for, by the agreements check's own rule. ``cycles``: the
    billing cycles by id (empty when they could not be read), looked up once per run, not per company."""
    fits = fitting_motions(agreements, ctx) if agreements else {}
    now = ctx.now
    rows = []
    for a in agreements:
        active = is_active(a, now)
        rows.append(
            {
                "id": a["id"],
                "name": a.get("name") or "",
                "type": ref_name(a, "type"),
                "type_id": ref_id(a, "type"),
                "status": a.get("agreementStatus") or "",
                "active": active,
                # active, but its start or billing start is still ahead
                "pending": is_pending(a, now, active=active),
                "child": bool(ref_id(a, "parentAgreement")),
                "billing_cycle": ref_name(a, "billingCycle"),
                "billing_cycle_id": ref_id(a, "billingCycle"),
                "one_time": bool(one_time_signals(a, cycles)),  # by flags and billingOptions, never the name
                "fits": fits.get(a["id"], []),
            }
        )
    return {
        "id": company["id"],
        "identifier": company.get("identifier") or "",
        "name": company.get("name") or "",
        "status": ref_name(company, "status"),
        "inactive": inactive_reason(company, statuses) is not None,
        "active_agreements": sum(1 for r in rows if r["active"]),
        "agreements": rows,
    }
