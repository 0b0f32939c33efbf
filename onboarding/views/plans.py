"""The "Fix it for me" plan page: a repair plan's exact changes (field, before, after, in ConnectWise's words),
grouped and summarised by step, a page at a time, with its live progress while it is applied and the re-check
after it; and what a step page shows about repairs (``plan_context``). The actions on a plan (build, approve,
retry, discard) are in ``onboarding.views.plan_actions``.

Views never call ConnectWise: building and applying are Celery tasks (onboarding.repairs.build_plan_task /
apply_plan); the pages poll the plan's row (its status says building, build failed, draft, ...) with htmx and still
make sense after a reload.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from connectwise.checks.plans import COMBINED, COMBINED_STEPS, unrepairable
from connectwise.checks.registry import STEP_KEYS, STEP_TITLES, STEPS
from connectwise.labels import field_label, value_label

from ..access import TenantAccess, get_plan, get_tenant
from ..models import RepairOperation, RepairPlan, StepResult


def step_or_404(key: str) -> str:
    """``key`` when it names a wizard step or the combined plan; raises Http404 otherwise."""
    if key not in STEP_KEYS and key != COMBINED:
        raise Http404
    return key


def step_url(slug: str, key: str) -> str:
    """Where a plan's step lives: the step page, or the overview for "Fix everything that can be fixed"."""
    return reverse("tenant_home", args=[slug]) if key == COMBINED else reverse("step", args=[slug, key])


FOLLOW_PARAM = "plan"  # the query parameter naming the plan the partner just asked for (``build`` sets it)


def is_building(plans: list[RepairPlan], follow: str | None = None) -> bool:
    """Whether the page shows "Building your plan…" and polls ``build_status``: the newest of a step's plans
    (newest first) is still being built, or it is the plan the partner just asked for (``follow``, its uuid) and
    the worker built it before this page was rendered (the poll then moves the page to it at once)."""
    if not plans:
        return False
    newest = plans[0]
    if newest.status == RepairPlan.Status.BUILDING:
        return True
    return bool(follow) and str(newest.uuid) == follow and newest.status == RepairPlan.Status.DRAFT


# Plans that never had changes to show: not listed among a step's earlier plans.
_UNBUILT = (RepairPlan.Status.BUILDING, RepairPlan.Status.BUILD_FAILED)


def plan_context(
    access: TenantAccess, key: str, result: StepResult | None, follow: str | None = None
) -> dict:
    """What a step page shows about repairs: the offer, a build in progress, the draft waiting, earlier plans.
    ``follow``: the uuid of the plan the partner just asked for (see ``is_building``)."""
    tenant = access.tenant
    plans = list(RepairPlan.objects.filter(tenant=tenant, step=key).order_by("-created_at", "-id")[:7])
    building = is_building(plans, follow)
    plans = [p for p in plans if p.status not in _UNBUILT]
    draft = next((p for p in plans if p.status == RepairPlan.Status.DRAFT), None)
    active = next(
        (p for p in plans if p.status in (RepairPlan.Status.APPROVED, RepairPlan.Status.APPLYING)), None
    )
    repairable = [f for f in (result.findings if result else []) if f.get("repairable")]
    return {
        "repairable_count": len(repairable),
        "plan_building": building,
        "plan_draft": draft,
        "plan_active": active,
        "plans": [p for p in plans if p not in (draft, active)][:5],
    }


# The plan page -----------------------------------------------------------------------------------------------


def _fmt(value: Any, names: dict | None = None) -> str:
    """A field value the way a partner admin reads it, as ConnectWise's screens show it: names for references
    (``names`` maps a reference's id to its name when the body carries only the id), Yes/No for flags, "Calendar
    Year" for ``CalendarYear`` (connectwise.labels)."""
    if isinstance(value, dict):
        if "$ref" in value:
            return f"(the record created by change {value['$ref']})"
        if "name" in value:
            return str(value["name"])
        if set(value) == {"id"}:
            inner = value["id"]
            if isinstance(inner, dict):
                return _fmt(inner, names)
            return (names or {}).get(inner) or f"record {inner}"
    if value is None:
        return "empty"
    label = value_label(value)
    if label is not None:
        return label
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _before_of(before: Any, field: str) -> Any:
    if not isinstance(before, dict):
        return None
    node: Any = before
    for part in field.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _target_names(op: RepairOperation) -> dict:
    """Names for the ids a change writes, from the plan's description (``... to "Monthly" (id 1)``)."""
    return {int(i): n for n, i in re.findall(r'"([^"]+)" \(id (\d+)[,)]', op.description or "")}


def operation_row(op: RepairOperation) -> dict:
    """One row of the plan table: what is changed (field, before, after) or what is created."""
    changes: list[dict] = []
    created: list[dict] = []
    if op.method == "PATCH" and isinstance(op.body, list):
        for item in op.body:
            if isinstance(item, dict):
                field = str(item.get("path", "")).strip("/")
                changes.append(
                    {
                        "field": field_label(field),
                        "api_field": field,
                        "before": _fmt(_before_of(op.before, field)),
                        "after": _fmt(item.get("value"), _target_names(op)),
                    }
                )
    elif op.method == "PUT" and isinstance(op.body, dict):
        for field, value in op.body.items():
            old = _before_of(op.before, field)
            if old != value:
                changes.append(
                    {
                        "field": field_label(field),
                        "api_field": field,
                        "before": _fmt(old),
                        "after": _fmt(value),
                    }
                )
    elif isinstance(op.body, dict):
        created = [{"field": field_label(k), "api_field": k, "value": _fmt(v)} for k, v in op.body.items()]
    return {
        "op": op,
        "action": {"POST": "Create", "PATCH": "Change", "PUT": "Replace", "DELETE": "Delete"}.get(
            op.method, op.method
        ),
        "changes": changes,
        "created": created,
        "step_title": STEP_TITLES.get(op.step, op.step),
    }


def _next_step(key: str):
    """The step after ``key`` in wizard order (registry.STEPS), or None after the last one."""
    keys = [s.key for s in STEPS]
    index = keys.index(key) if key in keys else len(keys)
    return STEPS[index + 1] if index + 1 < len(keys) else None


PAGE_SIZE = 50  # operations per page of the plan table: a plan of 200 creates stays readable (issue 18)


def _plan_body_context(access: TenantAccess, plan: RepairPlan, page: Any = 1) -> dict:
    """The plan table and its progress. Operations are grouped by step (a combined plan lists setup tables,
    catalog, agreements in that order), summarised per step and finding, and shown a page at a time; the counts
    come from one aggregate query, so a plan of hundreds of writes renders in a few queries."""
    tenant = access.tenant
    combined = plan.step == COMBINED
    counts = {s: 0 for s in RepairOperation.Status.values}
    summary: dict[str, dict] = {}
    for row in plan.operations.values("step", "finding_code", "method", "status").annotate(n=Count("id")):
        counts[row["status"]] += row["n"]
        step = row["step"] or plan.step
        group = summary.setdefault(step, {"total": 0, "done": 0, "kinds": {}})
        group["total"] += row["n"]
        if row["status"] != RepairOperation.Status.PENDING:
            group["done"] += row["n"]
        kind = (row["finding_code"], "Create" if row["method"] == "POST" else "Change")
        group["kinds"][kind] = group["kinds"].get(kind, 0) + row["n"]
    total = sum(counts.values())
    finished = counts["done"] + counts["already"] + counts["failed"]
    steps = list(COMBINED_STEPS) if combined else [plan.step]
    steps += [s for s in summary if s not in steps]  # existing_billing, when a cutover was chosen
    latest = _latest_by_key(tenant, steps)
    groups = []
    for step in steps:
        info = summary.get(step, {"total": 0, "done": 0, "kinds": {}})
        result = latest.get(step)
        groups.append(
            {
                "step": step,
                "title": STEP_TITLES.get(step, step),
                "total": info["total"],
                "done": info["done"],
                "kinds": [
                    {"code": code, "action": action, "count": n}
                    for (code, action), n in sorted(info["kinds"].items())
                ],
                "not_repaired": unrepairable(result.findings) if result is not None else [],
            }
        )
    manual = _manual_steps(tenant, steps) if combined else []
    paginator = Paginator(plan.operations.order_by("seq"), PAGE_SIZE)
    page_obj = paginator.get_page(page)
    verify = plan.verify_run
    verify_results = []
    if verify is not None and not verify.is_active:
        by_key = {r.key: r for r in StepResult.objects.filter(run=verify, key__in=steps)}
        verify_results = [by_key[k] for k in steps if k in by_key]
        for r in verify_results:
            r.title = STEP_TITLES.get(r.key, r.key)
    applying = plan.status in (RepairPlan.Status.APPROVED, RepairPlan.Status.APPLYING)
    return {
        # Findings of the step(s) that could be repairable but are not, each with the reason (issue 17).
        "not_repaired": [n for g in groups for n in g["not_repaired"]],
        "groups": groups,
        "manual_steps": manual,
        "combined": combined,
        "access": access,
        "tenant": tenant,
        "plan": plan,
        "step_title": "Everything that can be fixed" if combined else STEP_TITLES.get(plan.step, plan.step),
        "step_url": step_url(tenant.slug, plan.step),
        "rows": [operation_row(op) for op in page_obj.object_list],
        "page_obj": page_obj if paginator.num_pages > 1 else None,
        "counts": counts,
        "finished": finished,
        "total": total,
        "percent": round(100 * finished / total) if total else 100,
        "verify": verify,
        "verify_result": verify_results[0] if len(verify_results) == 1 else None,
        "verify_results": verify_results,
        # What the re-check still found (the fix for those is on the step page), and where to go next.
        "left": [f for f in verify_results[0].findings if f.get("severity") in ("error", "warning")]
        if len(verify_results) == 1
        else [],
        "next_step": None if combined else _next_step(plan.step),
        # Keep polling while the worker applies the plan and while the re-check after it runs.
        "polling": applying or (verify is not None and verify.is_active),
    }


# Why a step's findings are never in a plan (PRODUCT.md "The steps").
MANUAL_WHY = {
    "connection": "API keys are created in ConnectWise by a person, and only you can enter them here",
    "security_role": "ConnectWise does not let the API change security roles",
    "customers": "which companies the sync bills is your choice",
}


def _manual_steps(tenant, planned: list[str]) -> list[dict]:
    """Steps outside the combined plan whose latest result still needs a person: what, how many, why."""
    out = []
    for key, result in _latest_by_key(tenant, [k for k in MANUAL_WHY if k not in planned]).items():
        errors = sum(1 for f in result.findings if f.get("severity") == "error")
        if result.status in ("fail", "error") and errors:
            out.append(
                {
                    "key": key,
                    "title": STEP_TITLES.get(key, key),
                    "count": errors,
                    "why": MANUAL_WHY[key],
                }
            )
    return sorted(out, key=lambda m: STEP_KEYS.index(m["key"]))


def _latest_by_key(tenant, keys) -> dict:
    out = {}
    for key in keys:
        result = (
            StepResult.objects.filter(tenant=tenant, key=key)
            .only("key", "findings", "created_at")
            .order_by("-created_at", "-id")
            .first()
        )
        if result is not None:
            out[key] = result
    return out


@login_required
@require_GET
def plan_page(request, slug, plan_uuid):
    access = get_tenant(request, slug)
    plan = get_plan(access, plan_uuid)
    context = _plan_body_context(access, plan, request.GET.get("page", 1))
    return render(request, "onboarding/plan.html", context)


@login_required
@require_GET
def plan_status(request, slug, plan_uuid):
    """htmx fragment: the plan's operations with their live status."""
    access = get_tenant(request, slug)
    plan = get_plan(access, plan_uuid)
    context = _plan_body_context(access, plan, request.GET.get("page", 1))
    return render(request, "partials/plan_body.html", context)


urlpatterns = [
    path("t/<slug:slug>/plans/<uuid:plan_uuid>/", plan_page, name="plan"),
    path("t/<slug:slug>/plans/<uuid:plan_uuid>/status/", plan_status, name="plan_status"),
]
