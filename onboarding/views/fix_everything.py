"""Issue 18: "Fix everything that can be fixed" on the overview, and the Defaults for new agreements form on the
agreements page.

The combined plan is an ordinary ``RepairPlan`` whose step is ``connectwise.checks.plans.COMBINED`` ("all"): it is
built, approved, applied and re-checked through the same views and tasks as a step's plan (onboarding.views.plans).
Views never call ConnectWise: the form's type choices come from the latest agreements check.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from connectwise.checks.plans import COMBINED, combined_steps
from connectwise.checks.registry import STEP_TITLES

from ..access import TenantAccess, get_tenant
from ..forms import AgreementDefaultsForm
from ..models import CheckRun, RepairPlan
from ..runs import start_run


def fix_everything_context(access: TenantAccess, latest: dict) -> dict:
    """What the overview's "Fix everything that can be fixed" card shows: how many findings of the repairable
    steps can be fixed (per step), a plan being built, a draft waiting, a plan being applied."""
    from .plans import building_since  # noqa: PLC0415 (plans imports this module's siblings)

    tenant = access.tenant
    per_step = []
    for key in combined_steps(SimpleNamespace(cutover=tenant.billing_cutover)):
        result = latest.get(key)
        count = sum(1 for f in (result.findings if result else []) if f.get("repairable"))
        if count:
            per_step.append({"key": key, "title": STEP_TITLES.get(key, key), "count": count})
    plans = list(RepairPlan.objects.filter(tenant=tenant, step=COMBINED).order_by("-created_at")[:3])
    return {
        "fix_all_steps": per_step,
        "fix_all_count": sum(s["count"] for s in per_step),
        "fix_all_building": building_since(tenant, COMBINED) is not None,
        "fix_all_draft": next((p for p in plans if p.status == RepairPlan.Status.DRAFT), None),
        "fix_all_active": next(
            (p for p in plans if p.status in (RepairPlan.Status.APPROVED, RepairPlan.Status.APPLYING)), None
        ),
        "fix_all_key": COMBINED,
    }


def defaults_context(access: TenantAccess, form: AgreementDefaultsForm | None = None) -> dict:
    """The agreements page's Defaults for new agreements form (bound with errors after a refused save)."""
    return {"defaults_form": form or AgreementDefaultsForm(tenant=access.tenant)}


@login_required
@require_POST
def defaults_save(request, slug):
    """Save the defaults per motion; refused as a whole (nothing saved) when any motion is wrong."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    form = AgreementDefaultsForm(request.POST, tenant=tenant)
    if not form.is_valid():
        from .wizard import render_step  # noqa: PLC0415

        messages.error(request, "The defaults were not saved: " + "; ".join(_errors(form)))
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


def _errors(form) -> list[str]:
    return [str(e) for errors in form.errors.values() for e in errors]


urlpatterns = [
    path("t/<slug:slug>/agreements/defaults/", defaults_save, name="agreement_defaults_save"),
]
