"""Issue 18: "Fix everything that can be fixed" on the overview, and the Defaults for new agreements form on the
agreements page.

The combined plan is an ordinary ``RepairPlan`` whose step is ``connectwise.checks.plans.COMBINED`` ("all"): it is
built, approved, applied and re-checked through the same views and tasks as a step's plan (onboarding.views.plans).
Views never call ConnectWise: the form's type choices come from the latest agreements check.
"""

from __future__ import annotations

from types import SimpleNamespace

from connectwise.checks.plans import COMBINED, combined_steps
from connectwise.checks.registry import STEP_TITLES

from ..access import TenantAccess
from ..forms import AgreementDefaultsForm
from ..models import RepairPlan
from .plans import is_building


def fix_everything_context(access: TenantAccess, latest: dict, follow: str | None = None) -> dict:
    """What the overview's "Fix everything that can be fixed" card shows: how many findings of the repairable
    steps can be fixed (per step), a plan being built, a draft waiting, a plan being applied. ``follow``: the uuid
    of the plan the partner just asked for (``plans.is_building``)."""
    tenant = access.tenant
    per_step = []
    for key in combined_steps(SimpleNamespace(cutover=tenant.billing_cutover)):
        result = latest.get(key)
        count = sum(1 for f in (result.findings if result else []) if f.get("repairable"))
        if count:
            per_step.append({"key": key, "title": STEP_TITLES.get(key, key), "count": count})
    plans = list(RepairPlan.objects.filter(tenant=tenant, step=COMBINED).order_by("-created_at", "-id")[:3])
    return {
        "fix_all_steps": per_step,
        "fix_all_count": sum(s["count"] for s in per_step),
        "fix_all_building": is_building(plans, follow),
        "fix_all_draft": next((p for p in plans if p.status == RepairPlan.Status.DRAFT), None),
        "fix_all_active": next(
            (p for p in plans if p.status in (RepairPlan.Status.APPROVED, RepairPlan.Status.APPLYING)), None
        ),
        "fix_all_key": COMBINED,
    }


def defaults_context(access: TenantAccess, form: AgreementDefaultsForm | None = None) -> dict:
    """The agreements page's Defaults for new agreements form (bound with errors after a refused save)."""
    return {"defaults_form": form or AgreementDefaultsForm(tenant=access.tenant)}
