"""What the connection, customers and agreements pages show beyond the stored result, and the choices they save.

The company list comes from the CompanyDirectory table, which the customers check refreshes in the background
("Refresh company list" starts a run of that step); no view here ever calls ConnectWise.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Q
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from connectwise.checks import codes
from connectwise.checks.agreements import directory_candidates
from connectwise.checks.names import CompanyIndex

from .. import demo, mapping
from ..access import TenantAccess, get_tenant
from ..connections import shared_companies
from ..forms import ConnectionForm, CustomerCsvForm
from ..inputs import BIGINT_MAX, BadInput, parse_choice, parse_ids, parse_optional_id, safe_next
from ..models import BillingCustomer, CompanyChoice, CompanyDirectory, StepResult
from ..runs import recheck_after_change, start_run
from .fix_everything import defaults_context

PAGE_SIZE = 50
BILLING_PAGE_SIZE = 25


# Connection --------------------------------------------------------------------------------------------------


def context_connection(request, access: TenantAccess, *, result=None) -> dict:
    shared = shared_companies([access.tenant.pk]).get(access.tenant.pk, [])
    if not access.can_change:
        return {"form": None, "shared_with": shared}
    connection = getattr(access.tenant, "connection", None)
    return {
        "shared_with": shared,
        "sandbox_companies": demo.sandbox_companies(),  # empty outside demo mode
        # One way to replace the private key: this form's private key field (empty keeps the stored key).
        "form": ConnectionForm(connection=connection),
    }


# Customers ---------------------------------------------------------------------------------------------------

STATUS_FILTERS = {"active": "Active", "inactive": "Inactive"}
AGREEMENT_FILTERS = {"yes": "Has an active agreement", "no": "No active agreement"}


def _directory_filters(request) -> dict:
    return {
        "q": request.GET.get("q", "").strip()[:100],
        "status": request.GET.get("status", "") if request.GET.get("status") in STATUS_FILTERS else "",
        "agreement": request.GET.get("agreement", "")
        if request.GET.get("agreement") in AGREEMENT_FILTERS
        else "",
    }


def filtered_directory(tenant, filters: dict):
    qs = CompanyDirectory.objects.filter(tenant=tenant).defer("agreements")
    if filters["q"]:
        qs = qs.filter(Q(name__icontains=filters["q"]) | Q(identifier__icontains=filters["q"]))
    if filters["status"] == "active":
        qs = qs.filter(inactive=False)
    elif filters["status"] == "inactive":
        qs = qs.filter(inactive=True)
    if filters["agreement"] == "yes":
        qs = qs.filter(active_agreements__gt=0)
    elif filters["agreement"] == "no":
        qs = qs.filter(active_agreements=0)
    return qs.order_by("name", "cw_company_id")


def _duplicate_names(tenant, normalized: list[str]) -> set[str]:
    """Which of these normalised names more than one company in the directory has."""
    if not normalized:
        return set()
    return set(
        CompanyDirectory.objects.filter(tenant=tenant, normalized__in=set(normalized))
        .values("normalized")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("normalized", flat=True)
    )


def context_customers(request, access: TenantAccess, *, result=None) -> dict:
    tenant = access.tenant
    filters = _directory_filters(request)
    directory_total = CompanyDirectory.objects.filter(tenant=tenant).count()
    page = Paginator(filtered_directory(tenant, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    chosen_ids = set(tenant.company_choices.values_list("cw_company_id", flat=True))
    duplicates = _duplicate_names(tenant, [c.normalized for c in page])
    rows = [
        {"c": c, "chosen": c.cw_company_id in chosen_ids, "duplicate": c.normalized in duplicates}
        for c in page
    ]

    chosen_page = Paginator(tenant.company_choices.order_by("name", "cw_company_id"), PAGE_SIZE).get_page(
        request.GET.get("cpage")
    )
    chosen_dir = {
        d.cw_company_id: d
        for d in CompanyDirectory.objects.filter(
            tenant=tenant, cw_company_id__in=[c.cw_company_id for c in chosen_page]
        ).defer("agreements")
    }
    chosen_rows = [{"choice": c, "dir": chosen_dir.get(c.cw_company_id)} for c in chosen_page]

    return {
        "filters": filters,
        "filtering": any(filters.values()),
        "status_filters": STATUS_FILTERS,
        "agreement_filters": AGREEMENT_FILTERS,
        "directory_total": directory_total,
        "directory_refreshed": tenant.directory_refreshed_at,
        "page": page,
        "rows": rows,
        "chosen_total": len(chosen_ids),
        "chosen_page": chosen_page,
        "chosen_rows": chosen_rows,
        "import_form": CustomerCsvForm(),
        **_billing_context(request, tenant, chosen_ids),
        "back": request.get_full_path(),
    }


def _billing_context(request, tenant, chosen_ids: set[int]) -> dict:
    total = tenant.billing_customers.count()
    if not total:
        return {"billing_total": 0}
    unmatched = tenant.billing_customers.filter(cw_company_id__isnull=True).count()
    page = Paginator(
        tenant.billing_customers.order_by(F("cw_company_id").asc(nulls_first=True), "name"), BILLING_PAGE_SIZE
    ).get_page(request.GET.get("bpage"))
    directory = list(CompanyDirectory.objects.filter(tenant=tenant).values_list("cw_company_id", "name"))
    names = dict(directory)
    index = CompanyIndex([{"id": cid, "name": name} for cid, name in directory]) if directory else None
    pick, pick_query, picked = _picker(request, tenant)
    rows = []
    for b in page:
        suggestions = []
        if b.cw_company_id is None and index is not None:
            suggestions = index.suggest(b.name, limit=4)
        exact = [s for s in suggestions if s.exact]
        rows.append(
            {
                "b": b,
                "matched_name": names.get(b.cw_company_id, "") if b.cw_company_id else "",
                "suggestions": suggestions,
                # Two companies with the same normalised name: the admin must pick the right one.
                "duplicate": len(exact) > 1,
                "picking": b.pk == pick,
            }
        )
    return {
        "pick_query": pick_query,
        "picked": picked,
        "billing_total": total,
        "billing_unmatched": unmatched,
        "billing_page": page,
        "billing_rows": rows,
    }


PICKER_LIMIT = 10


def _picker(request, tenant) -> tuple[int | None, str, list]:
    """The searchable company picker of one unmatched billing customer (GET ``pick=<billing customer id>`` and
    ``pq=<text>``): up to PICKER_LIMIT companies of the company list whose name or identifier contains the text.
    Returns (billing customer id or None, the text, the companies)."""
    try:  # a bad value only means no picker is open: the page itself stays a 200
        pick = parse_optional_id(request.GET.get("pick", ""), field="pick", maximum=BIGINT_MAX)
    except BadInput:
        pick = None
    query = request.GET.get("pq", "").strip()[:100]
    if pick is None or not query:
        return pick, query, []
    found = list(
        CompanyDirectory.objects.filter(tenant=tenant)
        .filter(Q(name__icontains=query) | Q(identifier__icontains=query))
        .defer("agreements")
        .order_by("name", "cw_company_id")[:PICKER_LIMIT]
    )
    return pick, query, found


def _back(request, default_key: str = "customers"):
    slug = request.resolver_match.kwargs["slug"]
    return redirect(safe_next(request, reverse("step", args=[slug, default_key])))


@login_required
@require_POST
def customers_refresh(request, slug):
    """Refresh the company list: a background run of the customers step stores the directory it reads."""
    access = get_tenant(request, slug, change=True)
    if getattr(access.tenant, "connection", None) is None:
        messages.error(
            request, "Save your ConnectWise connection first; the company list is read through it."
        )
        return _back(request)
    _, created = start_run(access.tenant, actor=request.user, steps=["customers"])
    if created:
        messages.success(
            request, "Reading your company list from ConnectWise. This page updates when it is done."
        )
    else:
        messages.info(request, "A check is already running; the company list is refreshed when it finishes.")
    return _back(request)


def record_change(request, tenant, message: str, **detail) -> None:
    """Audit a change of the partner's choices (and tell the billing sync, mapping.record_change) and re-check the
    steps that judge them (customers, agreements and what depends on them) by themselves: the pages never show a
    result of choices that are gone."""
    mapping.record_change(tenant, request.user, message, **detail)
    recheck_after_change(tenant, ["customers"], actor=request.user)


def add_choices(tenant, company_ids: list[int]) -> int:
    """Choose these directory companies (identifier and name stored too); returns how many were new."""
    existing = set(
        CompanyChoice.objects.filter(tenant=tenant, cw_company_id__in=company_ids).values_list(
            "cw_company_id", flat=True
        )
    )
    new = [
        CompanyChoice(tenant=tenant, cw_company_id=d.cw_company_id, identifier=d.identifier, name=d.name)
        for d in CompanyDirectory.objects.filter(tenant=tenant, cw_company_id__in=company_ids).defer(
            "agreements"
        )
        if d.cw_company_id not in existing
    ]
    CompanyChoice.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


@login_required
@require_POST
def customers_select(request, slug):
    """Add or remove the selected companies (action=add|remove, company=<id> repeated)."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    ids = parse_ids(request.POST.getlist("company"), field="company")
    if not ids:
        messages.warning(request, "Select at least one company first.")
        return _back(request)
    action = parse_choice(request.POST.get("action"), ("add", "remove"), field="action")
    with transaction.atomic():
        if action == "add":
            n = add_choices(tenant, ids)
            text = f"Added {n} compan{'y' if n == 1 else 'ies'} to the sync."
        else:
            n, _ = CompanyChoice.objects.filter(tenant=tenant, cw_company_id__in=ids).delete()
            text = f"Removed {n} compan{'y' if n == 1 else 'ies'} from the sync."
        if n:
            record_change(request, tenant, text, action=action, companies=ids[:200])
    if n:
        messages.success(request, text)
    else:
        messages.info(request, "Nothing changed: already as selected.")
    return _back(request)


@login_required
@require_POST
def billing_match(request, slug):
    """Accept a suggestion (customer=<id>, company=<cw id>), unmatch (action=unmatch), accept every unique exact
    suggestion (action=exact) or forget the imported list (action=clear)."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    action = parse_choice(
        request.POST.get("action"), ("match", "unmatch", "exact", "clear"), field="action", default="match"
    )
    customer_id = parse_optional_id(request.POST.get("customer"), field="customer", maximum=BIGINT_MAX)
    company_id = parse_optional_id(request.POST.get("company"), field="company")
    with transaction.atomic():
        if action == "clear":
            n, _ = tenant.billing_customers.all().delete()
            record_change(request, tenant, f"Removed the imported list of {n} billing customers")
            messages.success(
                request, "The imported billing customer list was removed. Chosen companies stay chosen."
            )
            return _back(request)
        if action == "exact":
            n = _accept_exact(tenant)
            if n:
                record_change(request, tenant, f"Accepted {n} exact name matches", matched=n)
            messages.success(request, f"Accepted {n} exact match{'es' if n != 1 else ''}.")
            return _back(request)
        customer = tenant.billing_customers.filter(pk=customer_id).first() if customer_id else None
        if customer is None:
            messages.error(request, "That billing customer is no longer in the list; import it again.")
            return _back(request)
        if action == "unmatch":
            customer.cw_company_id = None
            customer.save(update_fields=["cw_company_id"])
            record_change(request, tenant, f'Unmatched billing customer "{customer.name}"')
            messages.success(request, f'"{customer.name}" is unmatched again.')
            return _back(request)
        company = (
            CompanyDirectory.objects.filter(tenant=tenant, cw_company_id=company_id).first()
            if company_id
            else None
        )
        if company is None:
            messages.error(request, "That company is not in your company list any more; refresh the list.")
            return _back(request)
        customer.cw_company_id = company.cw_company_id
        customer.save(update_fields=["cw_company_id"])
        add_choices(tenant, [company.cw_company_id])
        record_change(
            request,
            tenant,
            f'Matched billing customer "{customer.name}" to company "{company.name}"',
            customer=customer.name,
            company=company.cw_company_id,
        )
    messages.success(
        request, f'"{customer.name}" is matched to {company.name}, which is now chosen for the sync.'
    )
    return _back(request)


def _accept_exact(tenant) -> int:
    """Match every unmatched billing customer whose normalised name exactly one company has."""
    by_norm: dict[str, list[int]] = {}
    for cid, norm in CompanyDirectory.objects.filter(tenant=tenant).values_list(
        "cw_company_id", "normalized"
    ):
        by_norm.setdefault(norm, []).append(cid)
    matched = []
    for b in tenant.billing_customers.filter(cw_company_id__isnull=True):
        ids = by_norm.get(b.normalized, [])
        if len(ids) == 1:
            b.cw_company_id = ids[0]
            matched.append(b)
    BillingCustomer.objects.bulk_update(matched, ["cw_company_id"], batch_size=500)
    add_choices(tenant, [b.cw_company_id for b in matched])
    return len(matched)


# Agreements --------------------------------------------------------------------------------------------------

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
        **_defaults_context(access),
    }


def _defaults_context(access: TenantAccess) -> dict:
    return defaults_context(access)


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
            return _back(request, "agreements")
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
        return _back(request, "agreements")

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
    return _back(request, "agreements")


urlpatterns = [
    path("t/<slug:slug>/customers/refresh/", customers_refresh, name="customers_refresh"),
    path("t/<slug:slug>/customers/select/", customers_select, name="customers_select"),
    path("t/<slug:slug>/customers/billing/", billing_match, name="billing_match"),
    path("t/<slug:slug>/agreements/", agreements_save, name="agreements_save"),
]
