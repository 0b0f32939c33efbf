"""The actions on a repair plan ("Fix it for me"): ask for a plan to be built and poll until it exists, then
approve, retry or discard it. Every action is a POST by someone who may change the tenant (the build poll is a GET
htmx fragment); the plan page that shows the result is ``onboarding.views.plans``.

Views never call ConnectWise: building and applying are Celery tasks (onboarding.repairs.build_plan_task /
apply_plan); these views change the plan's row and enqueue. Approving twice, or a plan someone else already
approved or discarded, changes nothing (``repairs.approve`` and the status-guarded updates).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from .. import repairs
from ..access import get_plan, get_tenant
from ..models import AuditEvent, RepairPlan
from .plans import FOLLOW_PARAM, step_or_404, step_url


@login_required
@require_POST
def build(request, slug, key):
    """Enqueue building a plan for the step's repairable findings; the step page then polls until it exists."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    key = step_or_404(key)
    if getattr(tenant, "connection", None) is None:
        messages.error(request, "Save your ConnectWise connection first.")
        return redirect(step_url(slug, key))
    plan = repairs.request_plan(tenant, key, actor=request.user)
    # The page follows this plan: a worker quicker than the redirect must still move the page to the draft.
    return redirect(f"{step_url(slug, key)}?{FOLLOW_PARAM}={plan.uuid}#repair")


@login_required
@require_GET
def build_status(request, slug, key):
    """htmx fragment while a plan is being built: redirects to the plan when it appears, or shows the error."""
    access = get_tenant(request, slug)
    tenant = access.tenant
    key = step_or_404(key)
    plan = RepairPlan.objects.filter(tenant=tenant, step=key).order_by("-created_at", "-id").first()
    status = plan.status if plan is not None else None
    if status == RepairPlan.Status.DRAFT:
        url = reverse("plan", args=[slug, plan.uuid])
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    error = plan.error if status == RepairPlan.Status.BUILD_FAILED else ""
    if error:
        state = "error"
    elif status == RepairPlan.Status.BUILDING and plan.created_at >= timezone.now() - repairs.BUILD_TIMEOUT:
        state = "building"
    else:
        # Nothing asked for, or a build past its timeout that the watchdog has not closed yet.
        state = "lost"
    return render(
        request,
        "partials/plan_building.html",
        {"access": access, "tenant": tenant, "step_key": key, "state": state, "error": error},
    )


@login_required
@require_POST
def approve(request, slug, plan_uuid):
    access = get_tenant(request, slug, change=True)
    plan = get_plan(access, plan_uuid)
    if plan.status == RepairPlan.Status.DRAFT and not plan.operations.exists():
        messages.info(request, "This plan has no changes to apply.")
        return redirect("plan", slug=slug, plan_uuid=plan.uuid)
    try:
        approved = repairs.approve(plan, by=request.user)
    except repairs.PlanError as exc:  # another plan of this tenant is being applied: one at a time
        messages.warning(request, str(exc))
        return redirect("plan", slug=slug, plan_uuid=plan.uuid)
    if approved:
        repairs.enqueue_apply(plan)  # the plan's body shows the progress live, and then what was fixed
    else:
        messages.info(
            request,
            f"This plan was already {plan.get_status_display().lower()}, so nothing was approved or applied twice.",
        )
    return redirect("plan", slug=slug, plan_uuid=plan.uuid)


@login_required
@require_POST
def retry(request, slug, plan_uuid):
    """A failed plan: put its failed and remaining changes back in the queue. Safe after any fault: each change
    re-reads ConnectWise first, so a write whose answer was lost is found, not made twice."""
    access = get_tenant(request, slug, change=True)
    plan = get_plan(access, plan_uuid)
    try:
        reapplied = repairs.reapply(plan)
    except repairs.PlanError as exc:
        messages.warning(request, str(exc))
        return redirect("plan", slug=slug, plan_uuid=plan.uuid)
    if reapplied:
        AuditEvent.record(
            AuditEvent.Kind.PLAN_APPROVED,
            tenant=access.tenant,
            actor=request.user,
            message=f"Retried the remaining changes of the {plan.step} plan",
            plan=str(plan.uuid),
            retry=True,
        )
        repairs.enqueue_apply(plan)
        messages.success(request, "Trying the remaining changes again now.")
    else:
        messages.info(
            request, f"This plan is {plan.get_status_display().lower()}: there is nothing to retry."
        )
    return redirect("plan", slug=slug, plan_uuid=plan.uuid)


@login_required
@require_POST
def discard(request, slug, plan_uuid):
    access = get_tenant(request, slug, change=True)
    plan = get_plan(access, plan_uuid)
    if RepairPlan.objects.filter(pk=plan.pk, status=RepairPlan.Status.DRAFT).update(
        status=RepairPlan.Status.DISCARDED
    ):
        messages.success(request, "Plan discarded. Nothing was changed in your ConnectWise.")
        return redirect(step_url(slug, plan.step))
    plan.refresh_from_db()
    messages.info(
        request, f"This plan is {plan.get_status_display().lower()} and can no longer be discarded."
    )
    return redirect("plan", slug=slug, plan_uuid=plan.uuid)


urlpatterns = [
    path("t/<slug:slug>/steps/<str:key>/fix/", build, name="plan_build"),
    path("t/<slug:slug>/steps/<str:key>/fix/status/", build_status, name="plan_build_status"),
    path("t/<slug:slug>/plans/<uuid:plan_uuid>/approve/", approve, name="plan_approve"),
    path("t/<slug:slug>/plans/<uuid:plan_uuid>/discard/", discard, name="plan_discard"),
    path("t/<slug:slug>/plans/<uuid:plan_uuid>/retry/", retry, name="plan_retry"),
]
