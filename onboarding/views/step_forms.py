"""The step pages' form posts whose refused form re-renders the step page (``wizard.render_step``) with the errors
next to the fields: the customer CSV import (Customers), the cutover and additions to end (Seats billed today) and
the Defaults for new agreements (Agreements). A valid form is saved and redirects back to the step.

Kept apart from the pages' context providers (``connection``, ``customers``, ``agreements``, ``billing``,
``fix_everything``) because the wizard
imports those to render a step, and these posts import the wizard: one direction only.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from connectwise.checks.names import normalize_company_name

from .. import billing, repairs
from ..access import get_tenant
from ..forms import AgreementDefaultsForm, CustomerCsvForm
from ..models import BillingCustomer, CheckRun
from ..results import latest_results
from ..runs import start_run
from . import billing as billing_views
from .choice_changes import record_change
from .fix_everything import defaults_context
from .wizard import render_step


@login_required
@require_POST
def customers_import(request, slug):
    """Import the billing side's customer list. A bad file changes nothing and says why next to the field."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    form = CustomerCsvForm(request.POST, request.FILES)
    if not form.is_valid():
        return render_step(request, access, "customers", status=400, import_form=form)
    with transaction.atomic():
        # The import replaces the previous list; matches already accepted for the same name are kept.
        kept = {
            b.normalized: b.cw_company_id
            for b in tenant.billing_customers.filter(cw_company_id__isnull=False).only(
                "normalized", "cw_company_id"
            )
        }
        tenant.billing_customers.all().delete()
        rows = []
        for name in form.names:
            normalized = normalize_company_name(name)[:200]
            rows.append(
                BillingCustomer(
                    tenant=tenant, name=name, normalized=normalized, cw_company_id=kept.get(normalized)
                )
            )
        BillingCustomer.objects.bulk_create(rows, batch_size=1000)
        record_change(request, tenant, f"Imported {len(rows)} billing customers from CSV", imported=len(rows))
    messages.success(
        request,
        f"Imported {len(rows)} billing customers. Accept the suggested matches below, or leave them unmatched.",
    )
    return redirect(f"{reverse('step', args=[slug, 'customers'])}#billing")


@login_required
@require_POST
def cutover_plan(request, slug):
    """Store the cutover (audited) and build the plan that ends the chosen flagged additions at it."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    result = latest_results(tenant).get(billing.KEY)
    additions = billing_views.flagged_additions(result)
    form = billing_views.CutoverForm(request.POST, addition_ids=[a["id"] for a in additions])
    if not form.is_valid():
        return render_step(request, access, billing.KEY, status=400, cutover_form=form)
    if getattr(tenant, "connection", None) is None:
        messages.error(request, "Save your ConnectWise connection first.")
        return redirect("step", slug=slug, key=billing.KEY)
    billing.set_cutover(tenant, form.cleaned_data["cutover"], actor=request.user)
    key = billing.KEY
    options = {"addition_ids": sorted(form.cleaned_data["addition"])}
    repairs.request_plan(tenant, key, actor=request.user, options=options)
    messages.success(
        request,
        f"Cutover set to {form.cleaned_data['cutover']}. Building the plan to end "
        f"{len(options['addition_ids'])} addition(s); nothing is changed until you approve it.",
    )
    return redirect(f"{reverse('step', args=[slug, key])}#repair")


@login_required
@require_POST
def defaults_save(request, slug):
    """Save the defaults per motion; refused as a whole (nothing saved) when any motion is wrong."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    form = AgreementDefaultsForm(request.POST, tenant=tenant)
    if not form.is_valid():
        messages.error(request, "The defaults were not saved: " + "; ".join(form_errors(form)))
        return render_step(request, access, "agreements", status=400, **defaults_context(access, form))
    tenant.set_agreement_defaults(form.defaults, actor=request.user)
    if getattr(tenant, "connection", None) is not None:
        # The stored findings were judged without these defaults: check the step again so that the missing
        # agreements show up as fixable ("Fix it for me", "Fix everything that can be fixed").
        start_run(tenant, trigger=CheckRun.Trigger.MANUAL, actor=request.user, steps=["agreements"])
    messages.success(
        request,
        "Defaults saved. We are checking the agreements again: the missing ones can then be created for you.",
    )
    return redirect(f"{reverse('step', args=[slug, 'agreements'])}#defaults")


def form_errors(form) -> list[str]:
    return [str(e) for errors in form.errors.values() for e in errors]


urlpatterns = [
    path("t/<slug:slug>/customers/import/", customers_import, name="customers_import"),
    path("t/<slug:slug>/billing/cutover/", cutover_plan, name="billing_cutover"),
    path("t/<slug:slug>/agreements/defaults/", defaults_save, name="agreement_defaults_save"),
]
