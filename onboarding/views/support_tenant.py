"""The support staff's page for one tenant: its connection (public fields only), run history, one run's results
compared with an earlier run's (what changed), drift alerts and the audit trail.

Staff only (everyone else gets 404). Reads stored results only, never ConnectWise. The connection is read with
``values()`` of the public fields, so the encrypted private key is never even loaded.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from connectwise.checks.registry import STEP_TITLES, STEPS

from ..access import require_support
from ..connections import shared_companies
from ..models import AuditEvent, CheckRun, Connection, DriftAlert, StepResult, Tenant
from .audit import run_uuids, with_run_results

RUN_HISTORY = 50
AUDIT_EVENTS = 100


def _support_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise Http404
    return tenant


def _connection_summary(tenant: Tenant) -> dict | None:
    """The public part of the connection. values() of named fields: the encrypted private key is never loaded."""
    return (
        Connection.objects.filter(tenant=tenant)
        .values("site", "company_id", "public_key", "codebase", "updated_at", "updated_by__email")
        .first()
    )


def _findings_key(f: dict) -> tuple[str, str]:
    return (f.get("code", ""), f.get("subject", ""))


def compare_results(
    before: dict[str, StepResult], after: dict[str, StepResult], steps: list[str] | None = None
) -> list[dict]:
    """Per step (every step, or the keys in ``steps``: those the newer run checked): the status change and the
    findings added/removed (matched by code and subject)."""
    changes = []
    for step in STEPS:
        if steps is not None and step.key not in steps:
            continue
        old, new = before.get(step.key), after.get(step.key)
        old_findings = {_findings_key(f): f for f in (old.findings if old else [])}
        new_findings = {_findings_key(f): f for f in (new.findings if new else [])}
        added = [f for k, f in new_findings.items() if k not in old_findings]
        removed = [f for k, f in old_findings.items() if k not in new_findings]
        old_status = old.status if old else ""
        new_status = new.status if new else ""
        changes.append(
            {
                "key": step.key,
                "title": step.title,
                "before": old_status,
                "after": new_status,
                "in_both": bool(old and new),
                "status_changed": bool(old and new and old_status != new_status),
                "added": added,
                "removed": removed,
                "changed": bool(old and new and (old_status != new_status or added or removed)),
            }
        )
    return changes


def _pick_runs(request, tenant: Tenant, history: list[CheckRun]) -> tuple[CheckRun | None, CheckRun | None]:
    """The run to show (``?run=``, default the latest finished one) and the one to compare it with (``?against=``,
    default ``previous_like(run)``). Looked up in the history first, so usually without a query."""
    by_uuid = {str(r.uuid): r for r in history}
    finished = [r for r in history if r.status == CheckRun.Status.DONE]

    def lookup(value: str | None) -> CheckRun | None:
        if not value:
            return None
        if value in by_uuid:
            return by_uuid[value]
        try:
            return CheckRun.objects.select_related("actor").filter(tenant=tenant, uuid=value).first()
        except ValidationError:  # not a UUID
            return None

    run = lookup(request.GET.get("run")) or (finished[0] if finished else None)
    against = lookup(request.GET.get("against"))
    if against is None and run is not None and "against" not in request.GET:
        against = previous_like(run, finished)
    if against is not None and run is not None and against.pk == run.pk:
        against = None
    return run, against


def previous_like(run: CheckRun, finished: list[CheckRun]) -> CheckRun | None:
    """The run to compare ``run`` with by default: the latest finished run before it that covered the same steps,
    else the latest full run before it (a one-step run compared with a full one read "not in this run" for every
    other step). ``finished`` is newest first."""
    earlier = [r for r in finished if r.created_at < run.created_at and r.pk != run.pk]
    same = set(run.requested_steps())
    return next((r for r in earlier if set(r.requested_steps()) == same), None) or next(
        (r for r in earlier if not r.steps), None
    )


@login_required
@require_GET
def tenant_detail(request, slug):
    require_support(request)
    tenant = _support_tenant(slug)
    now = timezone.now()
    history = list(
        CheckRun.objects.filter(tenant=tenant)
        .select_related("actor")
        .order_by("-created_at", "-id")[:RUN_HISTORY]
    )
    run, against = _pick_runs(request, tenant, history)
    audit = list(AuditEvent.objects.filter(tenant=tenant)[:AUDIT_EVENTS])
    by_uuid = {str(r.uuid): r for r in history}
    # One read of step results: the two runs compared and the runs the audit trail shows the results of.
    picked = {r.pk for r in (run, against) if r is not None}
    picked |= {by_uuid[u].pk for u in run_uuids(audit) if u in by_uuid}
    results: dict[int, dict[str, StepResult]] = {pk: {} for pk in picked}
    if picked:
        for r in StepResult.objects.filter(run_id__in=picked):
            results[r.run_id][r.key] = r
    run_results = results.get(run.pk, {}) if run else {}
    # Only the steps the shown run checked: a step it did not check (a one-step run, or the seats step when not
    # due) would read "not in this run" and compare nothing.
    changes = compare_results(results.get(against.pk, {}), run_results, list(run_results)) if against else []
    connection = _connection_summary(tenant)
    return render(
        request,
        "dashboard/tenant.html",
        {
            "tenant": tenant,
            "connection": connection,
            "shared_with": shared_companies([tenant.pk]).get(tenant.pk, []),
            "stale": tenant.is_stale(now),
            "steps": STEPS,
            "step_titles": STEP_TITLES,
            "history": history,
            "active_run": next((r for r in history if r.is_active), None),
            "run": run,
            "against": against,
            "run_steps": [(s, run_results.get(s.key)) for s in STEPS] if run else [],
            "changes": changes,
            "changed_count": sum(1 for c in changes if c["changed"]),
            "audit": with_run_results(audit, by_uuid, results),
            "drift_alerts": list(DriftAlert.objects.filter(tenant=tenant)[:20]),
            "drift_titles": [STEP_TITLES.get(k, k) for k in tenant.drift_steps or []],
            "host_refused": any(
                f.get("code") == "connection.host_not_allowed"
                for f in (run_results["connection"].findings if "connection" in run_results else [])
            ),
        },
    )


urlpatterns = [
    path("support/t/<slug:slug>/", tenant_detail, name="support_tenant"),
]
