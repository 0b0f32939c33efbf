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
from connectwise.labels import field_label
from connectwise.query import cond

from . import agreement_defaults, codes
from .base import Finding, Severity, Status, StepOutcome
from .choices import MOTION_LABELS
from .context import RESOURCES, ResourceError, RunContext, ref_id, ref_name, same_name
from .failures import read_error
from .operations import PlannedOperation, not_repairable, ops_from_patch_findings, skip_repair
from .role import agreement_type_allowed, allowed_items, inquire_my_note

KEY = "agreements"

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


# The date fields that decide whether the sync may bill an agreement (SPEC 2025.8 ``components.schemas.Agreement``:
# ``startDate``, ``billStartDate``, ``endDate`` with ``noEndingDateFlag``, ``cancelledFlag`` with ``dateCancelled``).
# Billing syncs refuse an agreement whose billing has not started ("billing not started, no prorate created"; an
# addition dated before the agreement's billing start is invalid: vendor error lists quoted in issue 17), so a
# future start or billing start makes the agreement not yet usable, like the sync would see it.
START_FIELDS: tuple[tuple[str, str], ...] = (("startDate", "starts"), ("billStartDate", "starts billing"))


def not_started_reasons(agreement: dict, now: datetime) -> list[str]:
    """Why the agreement is not usable yet: ``["it starts billing on 2027-01-01"]``; empty when it has started.

    Reads ``startDate`` and ``billStartDate`` (ISO 8601 date-times, SPEC); a missing or unreadable date counts as
    started (ConnectWise requires a start date on create, so missing only happens in partial reads).
    """
    reasons = []
    for name, verb in START_FIELDS:
        start = parse_dt(agreement.get(name))
        if start is not None and start > now:
            reasons.append(f"it {verb} on {str(agreement.get(name))[:10]}")
    return reasons


def first_billing_day(agreement: dict) -> str:
    """The later of ``startDate`` and ``billStartDate`` as YYYY-MM-DD ("" when neither is set)."""
    dates = [parse_dt(agreement.get(name)) for name, _ in START_FIELDS]
    known = [d for d in dates if d is not None]
    return max(known).date().isoformat() if known else ""


def inactive_reasons(agreement: dict, now: datetime) -> list[str]:
    """Why an agreement is not active (empty: it is). A missing status counts as Active.

    Status, ``cancelledFlag``, a ``dateCancelled`` in the past, and an ``endDate`` in the past (unless
    ``noEndingDateFlag``); a start in the future is reported separately by ``not_started_reasons``.
    """
    reasons = []
    status = agreement.get("agreementStatus")
    if status and status != "Active":
        reasons.append(f"its status is {status}")
    if agreement.get("cancelledFlag"):
        reasons.append("it is cancelled")
    else:
        cancelled = parse_dt(agreement.get("dateCancelled"))
        if cancelled is not None and cancelled <= now:
            reasons.append(f"it was cancelled on {str(agreement.get('dateCancelled'))[:10]}")
    if has_ended(agreement, now):
        reasons.append(f"it ended on {str(agreement.get('endDate'))[:10]}")
    return reasons


def is_active(agreement: dict, now: datetime) -> bool:
    """True when the sync may bill the agreement today: active by status, flags and every date field.

    The same verdict as ``not inactive_reasons(...) and not not_started_reasons(...)``, without building the
    reasons: it runs for every agreement of a tenant, several times per run (benchmark verify), and a tenant's
    agreements share a handful of date combinations, so the verdict is cached per combination."""
    get = agreement.get
    if get("agreementStatus") not in (None, "", "Active") or get("cancelledFlag"):
        return False
    return _dates_active(
        _text(get("startDate")),
        _text(get("billStartDate")),
        _text(get("dateCancelled")),
        _text(get("endDate")),
        bool(get("noEndingDateFlag")),
        now,
    )


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


@lru_cache(maxsize=4096)
def _dates_active(
    start: str | None,
    bill_start: str | None,
    cancelled: str | None,
    end: str | None,
    no_end: bool,
    now: datetime,
) -> bool:
    for value in (start, bill_start):
        begins = parse_dt(value)
        if begins is not None and begins > now:
            return False
    ended = parse_dt(cancelled)
    if ended is not None and ended <= now:
        return False
    finish = None if no_end else parse_dt(end)
    return finish is None or finish >= now


def is_pending(agreement: dict, now: datetime) -> bool:
    """Active in every respect except that its start or billing start is still ahead."""
    if is_active(agreement, now):
        return False
    return not inactive_reasons(agreement, now) and bool(not_started_reasons(agreement, now))


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
    """True when the agreement's billing cycle recurs monthly by its ``billingOptions`` (SPEC BillingCycle).

    The cycle's name never decides (issue 17: "Monthly " can recur quarterly): a cycle missing from the Billing
    Cycle table cannot be confirmed monthly, whatever it is called."""
    return billing_option(agreement, cycles) == MONTHLY_OPTION


def monthly_cycle(ctx: RunContext) -> dict | None:
    cycles = [c for c in ctx.get("billing_cycles") if c.get("billingOptions") == MONTHLY_OPTION]
    cycles.sort(key=lambda c: (not same_name(c.get("name"), "Monthly"), c.get("id")))
    return cycles[0] if cycles else None


def one_time_cycle(ctx: RunContext) -> dict | None:
    cycles = [c for c in ctx.get("billing_cycles") if c.get("billingOptions") == ONE_TIME_OPTION]
    cycles.sort(key=lambda c: (not same_name(c.get("name"), "One Time"), c.get("id")))
    return cycles[0] if cycles else None


def cycle_label(cycle: dict | None, cycles: dict[int, dict]) -> str:
    """A billing cycle named unambiguously: ``"Monthly " (id 6, recurs Quarterly)``. Names are the partner's own
    and can look alike (a trailing space, a renamed row), so the id and what it really does (``billingOptions``)
    go with the name everywhere a cycle is shown (issue 17)."""
    if not isinstance(cycle, dict) or cycle.get("id") is None:
        return "none"
    full = cycles.get(cycle["id"]) or cycle
    option = full.get("billingOptions")
    recurs = {
        "NotRecurring": "one time",
        "SemiAnnual": "recurs Semi-Annually",
        "BiMonthly": "recurs Bi-Monthly",
        "BiWeekly": "recurs Bi-Weekly",
    }.get(option, f"recurs {option}" if option else "recurrence unknown")
    return f'"{full.get("name") or cycle.get("name") or ""}" (id {cycle["id"]}, {recurs})'


def describe(agreement: dict) -> str:
    return f'Agreement "{agreement.get("name") or ""}" (id {agreement.get("id")})'


# -- choosing the target ---------------------------------------------------------------------------------


@dataclass
class Target:
    company_id: int
    motion: str
    how: str  # "explicit", "auto", "none", "ambiguous", "explicit_missing", "hidden"
    agreement: dict | None = None
    candidates: list[dict] = field(default_factory=list)
    requested_id: int | None = None
    fell_back: bool = False  # auto target of another type than the motion prefers (agreements.type_fallback)
    hidden_types: list[dict] = field(default_factory=list)  # types the motion may need that the role hides


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
    When no active agreement fits, the ones that fit but have not started yet (``is_pending``) are the
    candidates: the target is then reported as ``agreements.not_started`` with its date, as the sync would see it.
    """
    return fit_motion(agreements, motion, ctx)[0]


def fit_motion(agreements: list[dict], motion: str, ctx: RunContext) -> tuple[list[dict], bool]:
    """``(candidates, fell_back)``: ``fell_back`` is True when the motion's preferred type (an Azure type for
    Azure Plan, a non-Azure one for monthly) had no agreement and the candidates are of another type."""
    found, fell_back = _fit([a for a in agreements if is_active(a, ctx.now) and not is_child(a)], motion, ctx)
    if not found:
        pending = [a for a in agreements if not is_child(a) and is_pending(a, ctx.now)]
        found, fell_back = _fit(pending, motion, ctx)
    return found, fell_back


def _fit(fitting: list[dict], motion: str, ctx: RunContext) -> tuple[list[dict], bool]:
    cycles = cycles_by_id(ctx) if ctx.error_of("billing_cycles") is None else {}
    one_time, recurring = [], []
    for a in fitting:
        (one_time if one_time_signals(a, cycles) else recurring).append(a)
    if motion == ANNUAL:
        if one_time:
            return one_time, False
        # A single recurring agreement is still the target (annual_not_one_time says what is wrong with it).
        return (fitting, True) if len(fitting) == 1 else ([], False)
    azure, other = [], []
    for a in recurring:
        (azure if is_azure_type(ref_name(a, "type")) else other).append(a)
    preferred = azure if motion == "azure" else other
    if preferred:
        return preferred, False
    return recurring, bool(recurring)


def is_azure_type(type_name: str | None) -> bool:
    """Name heuristic (no ConnectWise flag tells an Azure Plan type from an Office 365 one): it only orders the
    candidates and, when it decides a target, the step says so in a warning (``agreements.type_fallback``)."""
    return "azure" in (type_name or "").casefold()


def fitting_motions(agreements: list[dict], ctx: RunContext) -> dict[int, list[str]]:
    """agreement id -> the billing motions (keys of MOTION_LABELS) for which ``candidates_for`` counts it among
    the company's candidates. The customers step stores this with each agreement of the company list (``fits``),
    so the agreements page shows exactly the check's rule (``directory_candidates``)."""
    out: dict[int, list[str]] = {}
    for motion in MOTION_LABELS:
        for a in candidates_for(agreements, motion, ctx):
            out.setdefault(a["id"], []).append(motion)
    return out


def directory_candidates(rows: list[dict], motion: str) -> list[dict] | None:
    """The candidates for ``motion`` among a company's stored agreement summaries (the company list's
    ``agreements``: ``{id, name, ..., fits: [motions]}``), as ``candidates_for`` chose them when the customers step
    ran. None when the list was stored before ``fits`` was kept (the page then says to check again)."""
    if any("fits" not in r for r in rows):
        return None
    return [r for r in rows if motion in r["fits"]]


def select_targets(ctx: RunContext) -> list[Target]:
    """The target agreement of every chosen company (needs the agreements read; raises ResourceError)."""

    def build() -> list[Target]:
        by_company = agreements_by_company(ctx)
        by_id = ctx.remember("agreements_by_id", lambda: {a["id"]: a for a in ctx.get("agreements")})
        targets = []
        for chosen in ctx.choices.companies:
            cid = chosen.cw_company_id
            motion = chosen.motion if chosen.motion in MOTION_LABELS else "monthly"
            found, fell_back = fit_motion(by_company.get(cid, []), motion, ctx)
            hidden = hidden_types_for(ctx, motion)
            if chosen.agreement_id:
                agreement = by_id.get(chosen.agreement_id)
                if agreement is None or ref_id(agreement, "company") != cid:
                    target = Target(cid, motion, "explicit_missing", None, found, chosen.agreement_id)
                    target.hidden_types = hidden
                    targets.append(target)
                else:
                    targets.append(Target(cid, motion, "explicit", agreement, found, chosen.agreement_id))
            elif hidden and (not found or fell_back):
                # The role's Access Allowed list hides agreement types this motion may need: the company's
                # agreement of that type is invisible to us, so another type's agreement is no safe target.
                targets.append(Target(cid, motion, "hidden", None, found, hidden_types=hidden))
            elif len(found) == 1:
                targets.append(Target(cid, motion, "auto", found[0], found, fell_back=fell_back))
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


def hidden_types(ctx: RunContext) -> list[dict]:
    """Active agreement types that the role's Agreements Access Allowed list lacks (empty when the list or the
    types are unreadable). ConnectWise does not show the member agreements of these types (issue 17; the
    sandbox does the same), so a company's agreement of such a type is invisible to every read we make."""
    allowed = allowed_items(ctx)
    if allowed is None or ctx.error_of("agreement_types") is not None:
        return []
    return ctx.remember(
        "hidden_agreement_types",
        lambda: [
            t
            for t in ctx.get("agreement_types")
            if not t.get("inactiveFlag") and t.get("name") and not agreement_type_allowed(allowed, t["name"])
        ],
    )


def type_is_one_time(agreement_type: dict) -> bool:
    """An agreement type whose new agreements bill once (``billOneTimeFlag`` / ``oneTimeFlag``, SPEC
    ``AgreementType``)."""
    return bool(agreement_type.get("billOneTimeFlag") or agreement_type.get("oneTimeFlag"))


def hidden_types_for(ctx: RunContext, motion: str) -> list[dict]:
    """The hidden types that could hold the motion's agreement: one-time types for annual seats, Azure-named types
    for Azure Plan, the others for monthly."""
    return ctx.remember(f"hidden_agreement_types:{motion}", lambda: _hidden_types_for(ctx, motion))


def _hidden_types_for(ctx: RunContext, motion: str) -> list[dict]:
    hidden = hidden_types(ctx)
    if not hidden:
        return []
    if motion == ANNUAL:
        fitting = [t for t in hidden if type_is_one_time(t)]
    elif motion == "azure":
        fitting = [t for t in hidden if is_azure_type(t.get("name")) and not type_is_one_time(t)]
    else:
        fitting = [t for t in hidden if not is_azure_type(t.get("name")) and not type_is_one_time(t)]
    return fitting


def hidden_types_needed(ctx: RunContext) -> dict[str, list[int]]:
    """Hidden type name -> the chosen companies whose motion may need it (their target is missing, or would be
    another type's agreement). Empty when the agreements could not be read."""
    if not ctx.choices.companies or ctx.error_of("agreements") is not None:
        return {}
    out: dict[str, list[int]] = {}
    for t in select_targets(ctx):
        if t.how in ("hidden", "explicit_missing"):
            for agreement_type in t.hidden_types:
                out.setdefault(agreement_type["name"], []).append(t.company_id)
    return out


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

        if target.how in ("none", "explicit_missing", "hidden"):
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
        if findings and findings[-1].data.get("not_repairable") == NO_DEFAULT_CONTACT:
            findings.append(_no_default_contact(target, company))
        findings.extend(_same_type(ctx, cname, by_company.get(target.company_id, [])))

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
        if target.fell_back and target.motion in RECURRING_MOTIONS:
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
                    + _cannot_repair("" if monthly else NO_MONTHLY_CYCLE)
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


NO_MONTHLY_CYCLE = "your Billing Cycle table has no cycle that recurs Monthly to switch it to"


def _cannot_repair(why_not: str) -> str:
    """The sentence a finding of a repairable kind adds when it is not repairable (issue 17: it says why)."""
    return f" We can't fix this for you: {why_not}." if why_not else ""


def _spaced(value: str) -> str:
    return {"CalendarYear": "Calendar Year", "ContractYear": "Contract Year"}.get(value, value)


# The ONE place that decides how a one-time (annual) agreement is written (issue 17). In ConnectWise "One-Time" is a
# setting of the agreement's Recurring Invoice Parameters, not a row partners keep in the Billing Cycle table.
# Assumption, from the SPEC's Agreement schema (2025.8): ``billOneTimeFlag`` sits among the invoicing fields
# (``billingCycle``, ``prorateFirstBill``, ``billStartDate``) and is that setting; ``oneTimeFlag`` sits among the
# Application Parameters (``applicationUnits``, ``applicationLimit``) and is about the agreement's allowance, not
# its invoicing. So a new annual agreement gets ``billOneTimeFlag: true``; a NotRecurring billing cycle, when the
# partner keeps one, is set as well, but is never required. Reading still accepts any signal (one_time_signals).
ONE_TIME_FIELD = "billOneTimeFlag"


def _annual_create(ctx: RunContext, company: dict) -> tuple[dict | None, str]:
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


NO_DEFAULT_CONTACT = (
    "the company has no default contact, and ConnectWise requires a contact on a new agreement: in ConnectWise "
    "go to Companies > Companies > the company > set Default Contact (or open a contact and tick Default "
    "Contact) > Save, then check again"
)


def motion_defaults(ctx: RunContext, motion: str) -> dict | None:
    """The partner's defaults for new agreements of the motion (``agreement_defaults`` module), or None."""
    return (getattr(ctx.choices, "agreement_defaults", None) or {}).get(motion) or None


def _default_create(ctx: RunContext, company: dict, motion: str) -> tuple[dict | None, str]:
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
        create, why_not = _default_create(ctx, company, ANNUAL)
    else:
        create, why_not = _annual_create(ctx, company)
    option = billing_option(agreement, cycles) or "unknown"
    return Finding(
        codes.AGREEMENTS_ANNUAL_NOT_ONE_TIME,
        Severity.ERROR,
        subject=subject,
        explanation=(
            f"{cname} buys annual seats, which are invoiced once, but this agreement bills on a recurring cycle "
            f"({ref_name(agreement, 'billingCycle') or 'none'}, {option}) and has no one-time flag. Annual "
            "subscriptions need their own agreement with a one-time billing cycle." + _cannot_repair(why_not)
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
            create, why_not = _default_create(ctx, company, target.motion)
        elif target.motion == ANNUAL:
            create, why_not = _annual_create(ctx, company)
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
        explanation=explanation + (_cannot_repair(why_not) if create is None else ""),
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


def _no_default_contact(target: Target, company: dict) -> Finding:
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


# -- repairs -----------------------------------------------------------------------------------------------


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


def build_plan(ctx: RunContext, outcome: StepOutcome) -> list[PlannedOperation]:
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


def create_operation(f: Finding, spec: dict, now: datetime) -> PlannedOperation:
    """The POST of a new agreement from a finding's ``data.create`` (see ``_default_create``)."""
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
