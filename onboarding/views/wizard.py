"""The partner admin's wizard: the tenant overview, the six step pages, checks with live progress, the connection
form with its "replace key" flow, and the printable summary.

Views never call ConnectWise: they save choices, enqueue jobs and render stored results.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from connectwise.checks.registry import STEP_KEYS, STEP_TITLES, STEPS, get_step

from .. import demo
from ..access import TenantAccess, get_run_access, get_tenant
from ..connections import ConnectionRefused
from ..forms import ConnectionForm, ReplaceKeyForm
from ..inputs import safe_next
from ..models import AuditEvent, CheckRun
from ..results import latest_results, severity_groups
from ..runs import stale_steps, start_run, with_dependents
from ..steps_text import STEP_TEXT
from . import agreements, billing, customers, fix_everything, plan_actions, plans
from . import demo as demo_views
from .connection import context_connection


def _steps_nav(tenant, latest, stale=frozenset()) -> list[dict]:
    """One entry per step for the step list; a step whose result judged choices since changed is "stale"."""
    nav = []
    for i, step in enumerate(STEPS, start=1):
        result = latest.get(step.key)
        nav.append(
            {
                "num": i,
                "key": step.key,
                "title": step.title,
                "advisory": step.advisory,
                "status": "stale" if step.key in stale else (result.status if result else ""),
                "errors": sum(1 for f in result.findings if f.get("severity") == "error")
                if result and step.key not in stale
                else 0,
                "warnings": sum(1 for f in result.findings if f.get("severity") == "warning")
                if result and step.key not in stale
                else 0,
                "checked_at": result.created_at if result else None,
                # what a blocked step waits for ("Waiting for customers: ..."), said on the overview's card
                "blocked": result.summary
                if result and result.status == "blocked" and step.key not in stale
                else "",
                "url": reverse("step", args=[tenant.slug, step.key]),
            }
        )
    return nav


def next_action(nav, connection) -> dict | None:
    """The one thing to do next on the overview: the first step that is not pass/warn, with what it needs
    (``{"step": nav entry, "what": text}``); None when every step passes (the page then says what happens next)."""
    for s in nav:
        if s["status"] in ("pass", "warn") or s["advisory"]:  # an advisory step never holds readiness back
            continue
        if s["key"] == "connection" and connection is None:
            what = "Connect your ConnectWise: enter the site, company ID and the API member's keys."
        elif s["status"] == "stale":
            what = "Your choices changed; we are checking them now. This page updates when it is done."
        elif s["status"] in ("", "blocked"):
            what = "Not checked yet: it is checked as soon as the steps before it pass."
        elif s["status"] == "error":
            what = "We could not check this step: open it to see ConnectWise's answer."
        else:
            what = ngettext("%(n)d finding to fix.", "%(n)d findings to fix.", s["errors"] or 1) % {
                "n": s["errors"] or 1
            }
        return {"step": s, "what": what}
    return None


def _progress(nav) -> int:
    """Percent of the steps that decide readiness (advisory ones left out) that pass or warn."""
    required = [s for s in nav if not s["advisory"]]
    done = sum(1 for s in required if s["status"] in ("pass", "warn"))
    return round(100 * done / len(required))


def _active_run(tenant):
    return CheckRun.objects.filter(tenant=tenant, status__in=CheckRun.ACTIVE).first()


def _failed_run(tenant, key: str, result) -> CheckRun | None:
    """The tenant's latest run when it failed as a whole (no step results) after this step's latest result and it
    covered this step: the page shows why, with ConnectWise's message and request id when there is one."""
    last = (
        CheckRun.objects.filter(tenant=tenant)
        .exclude(status__in=CheckRun.ACTIVE)
        .order_by("-created_at")
        .first()
    )
    if last is None or last.status != CheckRun.Status.ERROR or key not in last.requested_steps():
        return None
    if result is not None and result.created_at >= last.created_at:
        return None
    return last


@login_required
@require_GET
def tenant_home(request, slug):
    access = get_tenant(request, slug)
    tenant = access.tenant
    latest = latest_results(tenant)
    stale = stale_steps(tenant, latest)
    nav = _steps_nav(tenant, latest, stale)
    return render(
        request,
        "onboarding/tenant_home.html",
        {
            "access": access,
            "tenant": tenant,
            "nav": nav,
            "progress": _progress(nav),
            "latest": latest,
            "active_run": _active_run(tenant),
            "step_text": STEP_TEXT,
            "connection": getattr(tenant, "connection", None),
            **fix_everything.fix_everything_context(access, latest, request.GET.get(plans.FOLLOW_PARAM)),
            "next_action": next_action(nav, getattr(tenant, "connection", None)),
        },
    )


# What each step page adds to the common context (a step without a page of its own adds nothing).
STEP_CONTEXT = {
    "connection": context_connection,
    "customers": customers.context_customers,
    "agreements": agreements.context_agreements,
    "existing_billing": billing.step_context,
}


def render_step(request, access: TenantAccess, key: str, *, status: int = 200, **overrides) -> HttpResponse:
    """The step page; ``overrides`` replace parts of the context (a bound form with errors, for instance)."""
    tenant = access.tenant
    info = get_step(key)
    connection = getattr(tenant, "connection", None)
    latest = latest_results(tenant)
    stale = stale_steps(tenant, latest)
    nav = _steps_nav(tenant, latest, stale)
    result = latest.get(key)
    index = STEP_KEYS.index(key)
    context = {
        "access": access,
        "tenant": tenant,
        "step": info,
        "step_num": index + 1,
        "text": STEP_TEXT[key],
        "nav": nav,
        "progress": _progress(nav),
        "result": result,
        # The stored result judged choices the partner has changed since: it is not shown as the step's state.
        "stale": key in stale,
        "groups": severity_groups(result) if result else [],
        "active_run": _active_run(tenant),
        "failed_run": _failed_run(tenant, key, result),
        "connection": connection,
        "prev": STEPS[index - 1] if index else None,
        "next": STEPS[index + 1] if index + 1 < len(STEPS) else None,
    }
    if result is not None and access.can_change and demo.on_sandbox(connection):
        # Demo mode: findings fixed inside ConnectWise offer "Make this change in the sandbox" (by index).
        for i, f in enumerate(result.findings):
            if demo.sandbox_change_for(f):
                f["demo_fix_index"] = i
    context.update(plans.plan_context(access, key, result, request.GET.get(plans.FOLLOW_PARAM)))
    provider = STEP_CONTEXT.get(key)
    if provider:
        context.update(provider(request, access, result=None if key in stale else result))
    context.update(overrides)
    return render(request, "onboarding/step.html", context, status=status)


@login_required
def step(request, slug, key):
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    access = get_tenant(request, slug, change=request.method == "POST")
    if key not in STEP_KEYS:
        raise Http404
    if request.method == "POST":
        if key != "connection":
            return HttpResponseNotAllowed(["GET"])
        return _save_connection(request, access)
    return render_step(request, access, key)


def _save_connection(request, access: TenantAccess) -> HttpResponse:
    tenant = access.tenant
    existing = getattr(tenant, "connection", None)
    form = ConnectionForm(request.POST, connection=existing)
    if not form.is_valid():
        return render_step(request, access, "connection", status=400, form=form)
    try:
        _, key_replaced = form.save(tenant, user=request.user)  # records CONNECTION_SAVED, or KEY_REPLACED
    except ConnectionRefused:
        return render_step(request, access, "connection", status=400, form=form)
    # Every step is checked: the other steps were blocked (or judged another connection) until now.
    _, created = start_run(tenant, actor=request.user, steps=[])
    done = "Private key replaced." if key_replaced else "Connection saved."
    if created:
        _connection_result(request, f"{done} Checking every step against your ConnectWise now.")
    else:
        _connection_result(request, f"{done} A check is already running; run it again when it finishes.")
    return _to_connection_card(tenant)


def _connection_result(request, text: str) -> None:
    """The outcome of a connection change, shown in the connection card where the partner acted (base.html leaves
    "inline" messages to the page)."""
    messages.success(request, text, extra_tags="inline connection")


def _to_connection_card(tenant) -> HttpResponse:
    return redirect(reverse("step", args=[tenant.slug, "connection"]) + "#connection")


def _record_key_replaced(request, tenant, connection) -> None:
    AuditEvent.record(
        AuditEvent.Kind.KEY_REPLACED,
        tenant=tenant,
        actor=request.user,
        message=f"Private key replaced for company {connection.company_id} at {connection.site}",
        site=connection.site,
        company_id=connection.company_id,
    )


@login_required
@require_POST
def replace_key(request, slug):
    """Replace only the stored private key; the old one is overwritten and neither is ever shown. The page offers
    one way to replace the key (the connection form's private key field); this key-only POST stays for clients
    that use it, with the same result in the connection card."""
    access = get_tenant(request, slug, change=True)
    tenant = access.tenant
    connection = getattr(tenant, "connection", None)
    if connection is None:
        raise Http404
    form = ReplaceKeyForm(request.POST)
    if not form.is_valid():
        return render_step(request, access, "connection", status=400, key_form=form)
    connection.set_private_key(form.cleaned_data["new_private_key"])
    connection.updated_by = request.user
    connection.updated_at = timezone.now()
    connection.save(update_fields=["private_key_encrypted", "private_key_hint", "updated_by", "updated_at"])
    _record_key_replaced(request, tenant, connection)
    start_run(tenant, actor=request.user, steps=[])
    _connection_result(request, "Private key replaced. Checking every step against your ConnectWise now.")
    return _to_connection_card(tenant)


@login_required
@require_POST
def run_check(request, slug):
    access = get_tenant(request, slug, change=True)
    # "Check now" on a step re-checks it and the steps whose results depend on it.
    steps = with_dependents(s for s in request.POST.getlist("step") if s in STEP_KEYS)
    run, created = start_run(access.tenant, actor=request.user, steps=steps)
    if not created:
        messages.info(request, "A check is already running for this tenant; showing its progress.")
    return redirect(safe_next(request, reverse("tenant_home", args=[slug])))


@login_required
@require_GET
def run_status(request, slug, run_uuid):
    """htmx fragment: progress of a run; when it has finished, tells htmx to reload the page. Polled every
    second by each watching partner: four indexed queries (session, user, run with tenant, membership)."""
    access, run = get_run_access(request, slug, run_uuid)
    if not run.is_active:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    total = run.progress.get("total") or len(run.requested_steps()) or 1
    done = run.progress.get("done") or 0
    current = run.progress.get("current") or ""
    return render(
        request,
        "partials/run_progress.html",
        {
            "tenant": access.tenant,
            "run": run,
            "percent": max(5, round(100 * done / total)),
            "current": STEP_TITLES.get(current, ""),
        },
    )


@login_required
@require_GET
def summary(request, slug):
    """Ready for billing sync, or what remains: per step its status and counts of findings. Printable."""
    access = get_tenant(request, slug)
    tenant = access.tenant
    latest = latest_results(tenant)
    rows = []
    for i, info in enumerate(STEPS, start=1):
        result = latest.get(info.key)
        counts = {"error": 0, "warning": 0, "info": 0}
        for f in result.findings if result else []:
            counts[f.get("severity", "info")] = counts.get(f.get("severity", "info"), 0) + 1
        rows.append(
            {
                "num": i,
                "key": info.key,
                "title": info.title,
                "result": result,
                "status": result.status if result else "",
                "counts": counts,
                # the advisory step (Seats billed today) never holds readiness back
                "ok": info.advisory or bool(result and result.status in ("pass", "warn")),
                "codes": sorted({f["code"] for f in result.findings if f.get("severity") != "info"})
                if result
                else [],
            }
        )
    remaining = [r for r in rows if not r["ok"]]
    return render(
        request,
        "onboarding/summary.html",
        {
            "access": access,
            "tenant": tenant,
            "rows": rows,
            "remaining": remaining,
            "ready": not remaining,
            "connection": getattr(tenant, "connection", None),
            "chosen": tenant.company_choices.count(),
            "last_run": tenant.runs.filter(status=CheckRun.Status.DONE).first(),
        },
    )


urlpatterns = [
    path("t/<slug:slug>/", tenant_home, name="tenant_home"),
    path("t/<slug:slug>/steps/<str:key>/", step, name="step"),
    path("t/<slug:slug>/connection/key/", replace_key, name="replace_key"),
    path("t/<slug:slug>/check/", run_check, name="run_check"),
    path("t/<slug:slug>/runs/<uuid:run_uuid>/status/", run_status, name="run_status"),
    path("t/<slug:slug>/summary/", summary, name="summary"),
    *customers.urlpatterns,
    *agreements.urlpatterns,
    *demo_views.urlpatterns,
    *plans.urlpatterns,
    *plan_actions.urlpatterns,
    *billing.urlpatterns,
]
