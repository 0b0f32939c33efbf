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
from ..models import AuditEvent, CheckRun


def with_run_results(events) -> list[AuditEvent]:
    """The events as a list, each "Check started" event given its run (``e.check_run``, None when it is gone) and,
    once the run is done, its result per step in wizard order (``e.step_results``: dicts of ``title``,
    ``status``, ``findings`` = the number of findings). Two queries for a page of events, whatever its length."""
    events = list(events)
    uuids = {
        e.detail.get("run") for e in events if e.kind == AuditEvent.Kind.RUN_STARTED and e.detail.get("run")
    }
    runs = CheckRun.objects.filter(
        uuid__in=uuids, tenant__in={e.tenant_id for e in events}
    )  # never another's
    found = {str(r.uuid): r for r in runs.prefetch_related("results")} if uuids else {}
    for e in events:
        if e.kind != AuditEvent.Kind.RUN_STARTED:
            continue
        e.check_run = found.get(e.detail.get("run") or "")
        results = {r.key: r for r in e.check_run.results.all()} if e.check_run else {}
        e.step_results = [
            {
                "title": s.title,
                "status": results[s.key].status,
                "findings": len(results[s.key].findings or []),
            }
            for s in STEPS
            if s.key in results
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
