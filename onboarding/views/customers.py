"""The customers step page: the company list (read from the CompanyDirectory table, which the customers check
refreshes in the background: no view here calls ConnectWise), the chosen companies, the imported billing customers
and their matching, and the posts that change them.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Q
from django.urls import path
from django.views.decorators.http import require_POST

from connectwise.checks.names import CompanyIndex

from ..access import TenantAccess, get_tenant
from ..forms import CustomerCsvForm
from ..inputs import BIGINT_MAX, BadInput, parse_choice, parse_ids, parse_optional_id
from ..models import BillingCustomer, CompanyChoice, CompanyDirectory
from ..runs import start_run
from .choice_changes import back_to_step, record_change

PAGE_SIZE = 50
BILLING_PAGE_SIZE = 25


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


@login_required
@require_POST
def customers_refresh(request, slug):
    """Refresh the company list: a background run of the customers step stores the directory it reads."""
    access = get_tenant(request, slug, change=True)
    if getattr(access.tenant, "connection", None) is None:
        messages.error(
            request, "Save your ConnectWise connection first; the company list is read through it."
        )
        return back_to_step(request, "customers")
    _, created = start_run(access.tenant, actor=request.user, steps=["customers"])
    if created:
        messages.success(
            request, "Reading your company list from ConnectWise. This page updates when it is done."
        )
    else:
        messages.info(request, "A check is already running; the company list is refreshed when it finishes.")
    return back_to_step(request, "customers")


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
        return back_to_step(request, "customers")
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
    return back_to_step(request, "customers")


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
            return back_to_step(request, "customers")
        if action == "exact":
            n = _accept_exact(tenant)
            if n:
                record_change(request, tenant, f"Accepted {n} exact name matches", matched=n)
            messages.success(request, f"Accepted {n} exact match{'es' if n != 1 else ''}.")
            return back_to_step(request, "customers")
        customer = tenant.billing_customers.filter(pk=customer_id).first() if customer_id else None
        if customer is None:
            messages.error(request, "That billing customer is no longer in the list; import it again.")
            return back_to_step(request, "customers")
        if action == "unmatch":
            customer.cw_company_id = None
            customer.save(update_fields=["cw_company_id"])
            record_change(request, tenant, f'Unmatched billing customer "{customer.name}"')
            messages.success(request, f'"{customer.name}" is unmatched again.')
            return back_to_step(request, "customers")
        company = (
            CompanyDirectory.objects.filter(tenant=tenant, cw_company_id=company_id).first()
            if company_id
            else None
        )
        if company is None:
            messages.error(request, "That company is not in your company list any more; refresh the list.")
            return back_to_step(request, "customers")
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
    return back_to_step(request, "customers")


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


urlpatterns = [
    path("t/<slug:slug>/customers/refresh/", customers_refresh, name="customers_refresh"),
    path("t/<slug:slug>/customers/select/", customers_select, name="customers_select"),
    path("t/<slug:slug>/customers/billing/", billing_match, name="billing_match"),
]
