"""The agreements step page: the billing motion and target agreement per chosen company with the rules the check
applies to it, the motion change that would make an agreement fit, the defaults for new agreements, and the post
that saves the mapping."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.urls import path
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from connectwise.checks import codes
from connectwise.checks.agreements import directory_candidates

from ..access import TenantAccess, get_tenant
from ..inputs import parse_choice, parse_ids, parse_optional_id
from ..models import CompanyChoice, CompanyDirectory, StepResult
from .choice_changes import back_to_step, record_change
from .customers import PAGE_SIZE
from .fix_everything import defaults_context

# The rules the agreements check applies to each chosen company, in the order the page shows them.
AGREEMENT_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "target",
        "A target agreement is set",
        (codes.AGREEMENTS_NOT_MAPPED, codes.AGREEMENTS_AMBIGUOUS, codes.AGREEMENTS_TYPE_FALLBACK),
    ),
    (
        "active",
        "The agreement is active and billing",
        (codes.AGREEMENTS_NOT_ACTIVE, codes.AGREEMENTS_NOT_STARTED),
    ),
    ("monthly", "Billing cycle Monthly", (codes.AGREEMENTS_BILLING_CYCLE_NOT_MONTHLY,)),
    ("calendar", "Cycle based on Calendar Year", (codes.AGREEMENTS_INVOICING_CYCLE_NOT_CALENDAR_YEAR,)),
    ("prorate", "Prorate Agreement ticked", (codes.AGREEMENTS_PRORATE_OFF,)),
    ("one_time", "One-time billing cycle", (codes.AGREEMENTS_ANNUAL_NOT_ONE_TIME,)),
    ("type", "Agreement type allowed for the API member", (codes.AGREEMENTS_TYPE_NOT_ALLOWED,)),
    ("top_level", "A top-level agreement (not a child)", (codes.AGREEMENTS_CHILD_AGREEMENT,)),
    ("single", "No other active agreement of the same type", (codes.AGREEMENTS_MULTIPLE_ACTIVE_SAME_TYPE,)),
]
RECURRING_ONLY = {"monthly", "calendar", "prorate"}
ANNUAL_ONLY = {"one_time"}


def motion_offers(agreements: list[dict], motion: str) -> list[dict]:
    """When no agreement (or several) fits ``motion`` but exactly one fits another motion, the motions that would
    make an agreement fit: ``[{motion, label, agreement}]``, by the check's rule (``directory_candidates``)."""
    offers = []
    for other, label in CompanyChoice.Motion.choices:
        if other == motion:
            continue
        fit = directory_candidates(agreements, other) or []
        if len(fit) == 1:
            offers.append({"motion": other, "label": label, "agreement": fit[0]})
    return offers


def company_of_finding(f: dict, agreement_company: dict[int, int]) -> int | None:
    """The ConnectWise company id a stored finding (``{code, data, ...}``) is about: its ``data.company_id``, else
    the company of its ``data.agreement_id`` in ``agreement_company`` (agreement id -> company id); None if neither."""
    data = f.get("data") or {}
    if data.get("company_id") is not None:
        return data["company_id"]
    record = f.get("record") or {}
    if record.get("path") == "company/companies":
        return record.get("id")
    agreement_id = data.get("agreement_id") or (
        record.get("id") if record.get("path") == "finance/agreements" else None
    )
    return agreement_company.get(agreement_id)


def _rules_for(choice: CompanyChoice, findings: list[dict], checked: bool) -> list[dict]:
    by_code = {}
    for f in findings:
        by_code.setdefault(f["code"], f)
    unmapped = any(c in by_code for c in (codes.AGREEMENTS_NOT_MAPPED, codes.AGREEMENTS_AMBIGUOUS))
    rules = []
    for key, label, rule_codes in AGREEMENT_RULES:
        if key in RECURRING_ONLY and choice.motion == CompanyChoice.Motion.ANNUAL:
            continue
        if key in ANNUAL_ONLY and choice.motion != CompanyChoice.Motion.ANNUAL:
            continue
        hit = next((by_code[c] for c in rule_codes if c in by_code), None)
        if not checked:
            state = "none"
        elif hit is not None:
            state = "warn" if hit.get("severity") == "warning" else "fail"
        elif unmapped and key not in ("target", "single"):
            state = "na"  # nothing to check without a target agreement
        else:
            state = "pass"
        rules.append({"key": key, "label": label, "state": state, "finding": hit})
    return rules


def context_agreements(request, access: TenantAccess, *, result: StepResult | None = None) -> dict:
    tenant = access.tenant
    q = request.GET.get("q", "").strip()[:100]
    choices = tenant.company_choices.order_by("name", "cw_company_id")
    if q:
        choices = choices.filter(Q(name__icontains=q) | Q(identifier__icontains=q))
    page = Paginator(choices, PAGE_SIZE).get_page(request.GET.get("page"))
    directory = {
        d.cw_company_id: d
        for d in CompanyDirectory.objects.filter(
            tenant=tenant, cw_company_id__in=[c.cw_company_id for c in page]
        )
    }
    agreement_company = {a["id"]: cid for cid, d in directory.items() for a in d.agreements if "id" in a}
    findings_by_company: dict[int, list[dict]] = {}
    checked_at = None
    if result is not None and result.status not in ("blocked", "error"):
        checked_at = result.created_at
        for f in result.findings:
            cid = company_of_finding(f, agreement_company)
            if cid is not None:
                findings_by_company.setdefault(cid, []).append(f)
    rows = []
    for choice in page:
        d = directory.get(choice.cw_company_id)
        agreements = list(d.agreements) if d else []
        # The agreements check's own rule (stored with the company list by the same kind of run), never a copy.
        candidates = directory_candidates(agreements, choice.motion)
        explicit = next((a for a in agreements if a.get("id") == choice.agreement_id), None)
        checked = checked_at is not None and choice.chosen_at <= checked_at
        # Agreement types the role hides from this company's motion (issue 17): the last check refused to pick
        # another type's agreement, so the page does not offer one as automatic either.
        hidden_types = next(
            (
                (f.get("data") or {}).get("hidden_types")
                for f in findings_by_company.get(choice.cw_company_id, [])
                if f["code"] == codes.AGREEMENTS_NOT_MAPPED and (f.get("data") or {}).get("hidden_types")
            ),
            [],
        )
        company_findings = findings_by_company.get(choice.cw_company_id, [])
        no_target = any(
            f["code"] in (codes.AGREEMENTS_NOT_MAPPED, codes.AGREEMENTS_AMBIGUOUS) for f in company_findings
        )
        auto = candidates[0] if candidates and len(candidates) == 1 and not no_target else None
        rows.append(
            {
                "choice": choice,
                "dir": d,
                "agreements": agreements,
                "candidates": candidates or [],
                "candidates_unknown": candidates is None and bool(agreements),
                "auto": auto,
                "offers": motion_offers(agreements, choice.motion)
                if d and not explicit and not auto and candidates is not None
                else [],
                "hidden_types": hidden_types,
                "explicit": explicit,
                "explicit_missing": bool(choice.agreement_id) and explicit is None,
                "rules": _rules_for(choice, company_findings, checked),
                "checked": checked,
            }
        )
    return {
        "q": q,
        "page": page,
        "rows": rows,
        "motions": CompanyChoice.Motion.choices,
        "chosen_total": tenant.company_choices.count(),
        "back": request.get_full_path(),
        **defaults_context(access),
    }


@login_required
@require_POST
def agreements_save(request, slug):
    """Save the mapping table (action=save: motion-<id> and agreement-<id> for each row=<id>) or set one motion for
    the selected companies (action=bulk: company=<id> repeated, bulk_motion)."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    motions = set(CompanyChoice.Motion.values)
    action = parse_choice(request.POST.get("action"), ("save", "bulk"), field="action", default="save")
    if action == "bulk":
        ids = parse_ids(request.POST.getlist("company"), field="company")
        motion = request.POST.get("bulk_motion")
        if not ids or motion not in motions:
            messages.warning(request, "Select companies and a billing motion first.")
            return back_to_step(request, "agreements")
        with transaction.atomic():
            n = (
                CompanyChoice.objects.filter(tenant=tenant, cw_company_id__in=ids)
                .exclude(motion=motion)
                .update(motion=motion)
            )
            if n:
                label = CompanyChoice.Motion(motion).label
                record_change(request, tenant, f"Set billing motion {label} for {n} companies", motion=motion)
        messages.success(
            request, f"Billing motion set to {CompanyChoice.Motion(motion).label} for {n} companies."
        )
        return back_to_step(request, "agreements")

    ids = parse_ids(request.POST.getlist("row"), field="row")
    choices = {c.cw_company_id: c for c in CompanyChoice.objects.filter(tenant=tenant, cw_company_id__in=ids)}
    valid_agreements = {
        d.cw_company_id: {a.get("id") for a in d.agreements}
        for d in CompanyDirectory.objects.filter(tenant=tenant, cw_company_id__in=list(choices))
    }
    # Every row is parsed before anything is saved: one bad value refuses the whole form (400), half of it is
    # never applied.
    parsed = {
        cid: (
            request.POST.get(f"motion-{cid}", choice.motion),
            parse_optional_id(request.POST.get(f"agreement-{cid}", ""), field=f"agreement-{cid}"),
        )
        for cid, choice in choices.items()
    }
    changed, problems = [], []
    for cid, choice in choices.items():
        motion, agreement_id = parsed[cid]
        if motion not in motions:
            problems.append(f"{choice.name}: unknown billing motion")
            continue
        if agreement_id is not None and agreement_id not in valid_agreements.get(cid, set()):
            problems.append(f"{choice.name}: that agreement does not belong to this company")
            continue
        if (motion, agreement_id) != (choice.motion, choice.agreement_id):
            choice.motion, choice.agreement_id = motion, agreement_id
            changed.append(choice)
    with transaction.atomic():
        CompanyChoice.objects.bulk_update(changed, ["motion", "agreement_id"])
        if changed:
            record_change(
                request,
                tenant,
                f"Agreement mapping changed for {len(changed)} companies",
                companies=[c.cw_company_id for c in changed][:200],
            )
    for p in problems[:5]:
        messages.error(request, p)
    if changed:
        messages.success(
            request,
            ngettext(
                "Saved %(n)d change. Checking the customers and agreements again now.",
                "Saved %(n)d changes. Checking the customers and agreements again now.",
                len(changed),
            )
            % {"n": len(changed)},
        )
    elif not problems:
        messages.info(request, "Nothing changed.")
    return back_to_step(request, "agreements")


urlpatterns = [
    path("t/<slug:slug>/agreements/", agreements_save, name="agreements_save"),
]
