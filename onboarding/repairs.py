"""Repair plans: build (the exact API writes), approve (a partner admin), apply (one operation at a time, each
result and an audit event stored), then re-verify. Applying is idempotent: operations already done are skipped,
and apply_operation itself re-queries before a create and treats ObjectExists as done.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import ngettext

from connectwise.checks import plans as cw_plans
from connectwise.errors import ConnectWiseError

from .cw import choices_for, client_for
from .delivery import claim_lease, redelivered
from .hosts import decide
from .models import AuditEvent, CheckRun, RepairOperation, RepairPlan, Tenant
from .runs import start_run

log = logging.getLogger(__name__)


class PlanError(Exception):
    """A plan cannot be built, approved or applied; the message is for the partner admin."""


def build_plan(tenant: Tenant, step: str, *, actor=None, options: dict | None = None) -> RepairPlan:
    """Ask ConnectWise what the step needs and store it as a draft plan (replacing older drafts of the step).
    Called from the worker (views enqueue it), because it reads the partner's ConnectWise."""
    connection = getattr(tenant, "connection", None)
    if connection is None:
        raise PlanError("Save a ConnectWise connection first.")
    decision = decide(connection.site)
    if not decision.allowed:
        raise PlanError(decision.refused)
    with client_for(connection, decision) as client:
        if step == cw_plans.COMBINED:
            # "Fix everything that can be fixed" (issue 18): one plan across the repairable steps.
            report = cw_plans.build_combined_report(client, choices_for(tenant))
        else:
            report = cw_plans.build_plan_report(client, choices_for(tenant), step, options)
    operations = report.operations
    with transaction.atomic():
        RepairPlan.objects.filter(tenant=tenant, step=step, status=RepairPlan.Status.DRAFT).update(
            status=RepairPlan.Status.DISCARDED
        )
        plan = RepairPlan.objects.create(tenant=tenant, step=step, created_by=actor)
        RepairOperation.objects.bulk_create(
            [
                RepairOperation(
                    plan=plan,
                    seq=i,
                    step=op.step or step,
                    method=op.method,
                    path=op.path,
                    body=op.body,
                    finding_code=op.finding_code,
                    subject=op.subject[:300],
                    description=op.description[:300],
                    before=op.before,
                    lookup=op.lookup,
                )
                for i, op in enumerate(operations, start=1)
            ]
        )
        AuditEvent.record(
            AuditEvent.Kind.PLAN_CREATED,
            tenant=tenant,
            actor=actor,
            message=_plan_message(step, len(operations), report.skipped),
            plan=str(plan.uuid),
        )
    plan.skipped = report.skipped  # not stored: the step's findings keep the reasons (``not_repairable``)
    return plan


def _plan_message(step: str, changes: int, skipped: list[dict]) -> str:
    """The audit line of a new plan; findings left out are named with the reason (issue 17)."""
    what = "every repairable step" if step == cw_plans.COMBINED else step
    text = ngettext(
        "Repair plan for %(step)s: %(n)d change", "Repair plan for %(step)s: %(n)d changes", changes
    ) % {"step": what, "n": changes}
    if skipped:
        text += "; not repaired: " + "; ".join(
            f"{s['subject']} ({s['code']}): {s['reason']}" for s in skipped
        )
    return text[:1000]


def approve(plan: RepairPlan, *, by) -> bool:
    """Draft -> approved, once. Returns False when it was not a draft any more (a double click, someone else)."""
    now = timezone.now()
    with transaction.atomic():
        updated = RepairPlan.objects.filter(pk=plan.pk, status=RepairPlan.Status.DRAFT).update(
            status=RepairPlan.Status.APPROVED,
            approved_by=by if getattr(by, "pk", None) else None,
            approved_at=now,
        )
        if updated:
            count = plan.operations.count()
            AuditEvent.record(
                AuditEvent.Kind.PLAN_APPROVED,
                tenant=plan.tenant,
                actor=by,
                message=ngettext(
                    "Approved %(n)d change for %(step)s", "Approved %(n)d changes for %(step)s", count
                )
                % {
                    "n": count,
                    "step": "every repairable step" if plan.step == cw_plans.COMBINED else plan.step,
                },
                plan=str(plan.uuid),
            )
    plan.refresh_from_db()
    return bool(updated)


def enqueue_apply(plan: RepairPlan) -> None:
    transaction.on_commit(lambda: apply_plan.delay(plan.pk))


def claim_for_apply(plan_id: int, *, redelivered: bool = False, now=None) -> RepairPlan | None:
    """approved -> applying; or resume a plan left "applying" by a worker that died. None when there is nothing
    to do, or when another worker is applying it right now.

    Resuming used to be unconditional, so two deliveries (a double enqueue, the watchdog's re-enqueue while the
    first worker was still busy) applied the same plan at once, and a create could be sent twice. Now an
    "applying" plan is resumed only when its worker must be gone: this is a redelivery of the task (see
    runs.claim) or the task's hard time limit has passed since it started; the resume is a compare-and-swap on
    started_at, so exactly one delivery applies the plan. Finished operations are skipped.
    """
    claimed = claim_lease(
        RepairPlan,
        plan_id,
        ready=RepairPlan.Status.APPROVED,
        busy=RepairPlan.Status.APPLYING,
        lease_seconds=settings.PLAN_APPLY_TIME_LIMIT + 30,  # the task's hard time limit
        redelivered=redelivered,
        now=now or timezone.now(),
    )
    if claimed is None:
        return None
    if claimed == "taken_over":
        log.warning("plan %s: resuming a plan whose worker stopped", plan_id)
    return RepairPlan.objects.select_related("tenant").get(pk=plan_id)


def reapply(plan: RepairPlan) -> bool:
    """failed -> approved, its failed operations pending again, so claim_for_apply + apply finish it. Safe after
    any fault: apply_operation re-queries before a create (a write whose answer was lost is found, not sent
    again) and re-reads before a PATCH. Returns False when the plan was not failed (a double click)."""
    with transaction.atomic():
        if not RepairPlan.objects.filter(pk=plan.pk, status=RepairPlan.Status.FAILED).update(
            status=RepairPlan.Status.APPROVED, error="", finished_at=None
        ):
            return False
        plan.operations.filter(status=RepairOperation.Status.FAILED).update(
            status=RepairOperation.Status.PENDING, error="", applied_at=None
        )
    plan.refresh_from_db()
    return True


def apply(plan: RepairPlan, *, verify: bool = True, actor=None) -> RepairPlan:
    """Apply pending operations one at a time, recording each; then re-verify the step."""
    tenant = plan.tenant
    connection = tenant.connection
    decision = decide(connection.site)
    created_ids: dict[int, int] = {
        op.seq: op.result["id"]
        for op in plan.operations.filter(
            status__in=[RepairOperation.Status.DONE, RepairOperation.Status.ALREADY]
        )
        if isinstance(op.result, dict) and "id" in op.result
    }
    failed = None
    with client_for(connection, decision) as client:
        for op in plan.operations.filter(status=RepairOperation.Status.PENDING).order_by("seq"):
            planned = cw_plans.PlannedOperation(
                method=op.method,
                path=op.path,
                body=op.body,
                finding_code=op.finding_code,
                subject=op.subject,
                description=op.description,
                before=op.before,
                lookup=op.lookup,
            )
            try:
                result = cw_plans.apply_operation(client, planned, created_ids)
            except (ConnectWiseError, cw_plans.UnresolvedReference) as exc:
                op.status = RepairOperation.Status.FAILED
                op.error = str(exc)[:2000]
                op.applied_at = timezone.now()
                op.save(update_fields=["status", "error", "applied_at"])
                AuditEvent.record(
                    AuditEvent.Kind.OPERATION_FAILED,
                    tenant=tenant,
                    actor=plan.approved_by or actor or "operator",
                    message=f"{op.description or op.method + ' ' + op.path}: {exc}"[:500],
                    plan=str(plan.uuid),
                    seq=op.seq,
                    method=op.method,
                    path=op.path,
                )
                failed = exc
                break
            record = result.record if isinstance(result.record, dict) else {}
            if "id" in record:
                created_ids[op.seq] = record["id"]
            op.status = (
                RepairOperation.Status.ALREADY if result.status == "already" else RepairOperation.Status.DONE
            )
            op.result = _after_values(op, record)
            op.applied_at = timezone.now()
            op.save(update_fields=["status", "result", "applied_at"])
            AuditEvent.record(
                AuditEvent.Kind.OPERATION_APPLIED,
                tenant=tenant,
                actor=plan.approved_by or actor or "operator",
                message=(op.description or f"{op.method} {op.path}")[:500],
                plan=str(plan.uuid),
                seq=op.seq,
                method=op.method,
                path=op.path,
                outcome=op.status,
                before=op.before,
                after=op.result,
                approved_by=getattr(plan.approved_by, "email", "") or "",
            )
    now = timezone.now()
    if failed is not None:
        final = {"status": RepairPlan.Status.FAILED, "error": f"A change failed: {failed}"[:2000]}
    else:
        final = {"status": RepairPlan.Status.APPLIED}
    # The plan's final status and its re-check are written together: a page polling in between never sees an
    # applied plan without the run that re-checks it.
    with transaction.atomic():
        if verify:
            final["verify_run"], _ = start_run(
                tenant, trigger=CheckRun.Trigger.REPAIR, actor=plan.approved_by, steps=[]
            )
        RepairPlan.objects.filter(pk=plan.pk).update(finished_at=now, **final)
    plan.refresh_from_db()
    return plan


def _after_values(op: RepairOperation, record: dict) -> dict:
    """What the record looks like after the change: the fields the operation touched, plus its id and name."""
    keys = {"id", "name", "identifier"}
    if isinstance(op.body, list):
        keys |= {o.get("path", "") for o in op.body if isinstance(o, dict)}
    elif isinstance(op.body, dict):
        keys |= set(op.body)
    return {k: record[k] for k in keys if k in record}


def plan_as_dict(plan: RepairPlan) -> dict:
    return {
        "plan": str(plan.uuid),
        "step": plan.step,
        "status": plan.status,
        "operations": [
            {
                "seq": op.seq,
                "step": op.step or plan.step,
                "method": op.method,
                "path": op.path,
                "body": op.body,
                "finding": op.finding_code,
                "subject": op.subject,
                "description": op.description,
                "before": op.before,
                "status": op.status,
            }
            for op in plan.operations.all()
        ],
    }


@shared_task(
    bind=True,
    name="onboarding.apply_plan",
    soft_time_limit=settings.PLAN_APPLY_TIME_LIMIT,
    time_limit=settings.PLAN_APPLY_TIME_LIMIT + 30,
)
def apply_plan(self, plan_id: int) -> str:
    """The Celery task that applies an approved plan (enqueued by ``enqueue_apply`` and the watchdog)."""
    plan = claim_for_apply(plan_id, redelivered=redelivered(self))
    if plan is None:
        return "skipped"
    try:
        plan = apply(plan)
    except SoftTimeLimitExceeded:
        RepairPlan.objects.filter(pk=plan.pk, status=RepairPlan.Status.APPLYING).update(
            status=RepairPlan.Status.FAILED,
            error="Applying took longer than its time limit.",
            finished_at=timezone.now(),
        )
    except Exception as exc:
        log.exception("plan %s crashed", plan.uuid)
        RepairPlan.objects.filter(pk=plan.pk, status=RepairPlan.Status.APPLYING).update(
            status=RepairPlan.Status.FAILED,
            error=f"Applying crashed: {type(exc).__name__}",
            finished_at=timezone.now(),
        )
    return "done"


def resume_stuck_plans(now=None) -> int:
    """Watchdog: re-enqueue ``apply_plan`` for every plan still "applying" past ``PLAN_APPLY_TIME_LIMIT`` + 60 s
    (its worker died; ``claim_for_apply`` decides whether the new delivery may take it over). Returns how many."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 60)
    plan_ids = list(
        RepairPlan.objects.filter(status=RepairPlan.Status.APPLYING, started_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    for plan_id in plan_ids:
        apply_plan.delay(plan_id)
    return len(plan_ids)


__all__ = [
    "PlanError",
    "build_plan",
    "approve",
    "enqueue_apply",
    "claim_for_apply",
    "reapply",
    "apply",
    "plan_as_dict",
    "asdict",
]
