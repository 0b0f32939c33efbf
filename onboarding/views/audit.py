"""The tenant's audit trail: who changed the connection, started checks, approved plans, and every change applied
in ConnectWise with its before and after values. Read-only for everyone; the trail is append-only."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from connectwise.checks.registry import STEPS

from ..access import get_tenant
from ..models import AuditEvent, CheckRun, StepResult


def run_uuids(events) -> set[str]:
    """The run ids the "Check started" events among ``events`` name."""
    return {
        e.detail.get("run") for e in events if e.kind == AuditEvent.Kind.RUN_STARTED and e.detail.get("run")
    }


def with_run_results(
    events, runs: dict[str, CheckRun] | None = None, results: dict[int, dict[str, StepResult]] | None = None
) -> list[AuditEvent]:
    """The events as a list, each "Check started" event given its run (``e.check_run``, None when it is gone) and,
    once the run is done, its result per step in wizard order (``e.step_results``: dicts of ``title``,
    ``status``, ``findings`` = the number of findings). ``runs`` (by uuid) and ``results`` (run pk -> step key ->
    result) are what the caller has loaded already; the rest is read in at most two queries."""
    events = list(events)
    runs = dict(runs or {})
    results = dict(results or {})
    named = run_uuids(events)
    missing = named - set(runs)
    if missing:
        tenants = {e.tenant_id for e in events}  # never another tenant's run
        runs.update({str(r.uuid): r for r in CheckRun.objects.filter(uuid__in=missing, tenant__in=tenants)})
    unread = {r.pk for u, r in runs.items() if u in named} - set(results)
    if unread:
        for r in StepResult.objects.filter(run_id__in=unread):
            results.setdefault(r.run_id, {})[r.key] = r
    for e in events:
        if e.kind != AuditEvent.Kind.RUN_STARTED:
            continue
        e.check_run = runs.get(e.detail.get("run") or "")
        by_key = results.get(e.check_run.pk, {}) if e.check_run else {}
        e.step_results = [
            {"title": s.title, "status": by_key[s.key].status, "findings": len(by_key[s.key].findings or [])}
            for s in STEPS
            if s.key in by_key
        ]
    return events


@login_required
@require_GET
def audit(request, slug):
    access = get_tenant(request, slug)
    events = AuditEvent.objects.filter(tenant=access.tenant).select_related("actor")
    kind = request.GET.get("kind", "")
    if kind in AuditEvent.Kind.values:
        events = events.filter(kind=kind)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "onboarding/audit.html",
        {
            "access": access,
            "tenant": access.tenant,
            "page": page,
            "events": with_run_results(page.object_list),
            "kind": kind,
            "kinds": AuditEvent.Kind.choices,
        },
    )


urlpatterns = [path("t/<slug:slug>/audit/", audit, name="audit")]
