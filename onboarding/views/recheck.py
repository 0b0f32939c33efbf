"""Support re-checks: one tenant's (from its page) and a bulk re-check of the tenants ticked on the dashboard list,
whose progress the list then shows live (``recheck_progress``).

Staff only (everyone else gets 404). Starts runs through ``onboarding.runs.start_run`` (one active run per tenant:
a tenant already being checked is counted, not started twice); never calls ConnectWise itself.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from .. import monitoring
from ..access import require_support
from ..inputs import safe_next
from ..models import CheckRun, Tenant
from ..runs import start_run
from . import recheck_progress

BULK_LIMIT = 200


def _back(request, default: str) -> str:
    return safe_next(request, default)


def _recheck(tenants, user, runs: list[CheckRun] | None = None) -> tuple[int, int, int]:
    """Start support-triggered runs; returns (started, already running, not connected). Each run started or found
    running is appended to ``runs`` when given."""
    started = running = unconnected = 0
    for tenant in tenants:
        if not tenant.connected:
            unconnected += 1
            continue
        run, created = start_run(tenant, trigger=CheckRun.Trigger.SUPPORT, actor=user)
        if runs is not None:
            runs.append(run)
        started += int(created)
        running += int(not created)
    return started, running, unconnected


def _recheck_message(request, started: int, running: int, unconnected: int) -> None:
    parts = []
    if started:
        parts.append(f"Started {started} check{'s' if started != 1 else ''}.")
    if running:
        parts.append(f"{running} already running.")
    if unconnected:
        parts.append(f"{unconnected} skipped: no ConnectWise connection yet.")
    level = messages.SUCCESS if started else messages.INFO
    messages.add_message(request, level, " ".join(parts) or "Nothing to check.")


@login_required
@require_POST
def recheck_tenant(request, slug):
    require_support(request)
    tenant = monitoring.with_markers(Tenant.objects.filter(slug=slug)).first()
    if tenant is None:
        raise Http404
    _recheck_message(request, *_recheck([tenant], request.user))
    return redirect(_back(request, reverse("support_tenant", args=[slug])))


@login_required
@require_POST
def bulk_recheck(request):
    require_support(request)
    slugs = list(dict.fromkeys(s for s in request.POST.getlist("tenant") if s))[:BULK_LIMIT]
    if not slugs:
        messages.info(request, "Select at least one tenant to re-check.")
    else:
        tenants = list(monitoring.with_markers(Tenant.objects.filter(slug__in=slugs)).order_by("pk"))
        runs: list[CheckRun] = []
        _recheck_message(request, *_recheck(tenants, request.user, runs))
        recheck_progress.follow(request, runs)  # the dashboard shows their progress live
    return redirect(_back(request, reverse("dashboard")))


urlpatterns = [
    path("support/recheck/", bulk_recheck, name="support_bulk_recheck"),
    path("support/recheck/progress/", recheck_progress.recheck_progress, name="support_recheck_progress"),
    path("support/t/<slug:slug>/recheck/", recheck_tenant, name="support_recheck"),
]
