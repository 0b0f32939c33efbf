"""Repair plans: request and build (the exact API writes, in the worker; the plan row says "building", then
"draft" or "build_failed"), approve (a partner admin), apply (one operation at a time, each result and an audit
event stored), then re-verify. Applying is idempotent: operations already done are skipped,
and apply_operation itself re-queries before a create and treats ObjectExists as done.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import ngettext

from connectwise.checks import plans as cw_plans
from connectwise.errors import ConnectWiseError

from .cw import NotConnectable, choices_for, tenant_client
from .delivery import claim_lease, redelivered
from .models import AuditEvent, CheckRun, RepairOperation, RepairPlan, Tenant
from .runs import start_run

log = logging.getLogger(__name__)


class PlanError(Exception):
    """A plan cannot be built, approved or applied; the message is for the partner admin."""


# A plan still "building" this long after it was asked for is closed as build_failed by the watchdog
# (close_stuck_builds): longer than the build task's soft time limit, so only a build whose worker is gone (or that
# waited in the queue that long) is closed.
BUILD_TIMEOUT = timedelta(seconds=settings.CHECK_RUN_TIME_LIMIT + 5 * 60)


def request_plan(tenant: Tenant, step: str, *, actor=None, options: dict | None = None) -> RepairPlan:
    """The partner asked for a plan of ``step`` (a step key or ``COMBINED``): store a plan in the "building" state
    and enqueue ``build_plan_task`` after commit. A build of the same step still running is superseded
    (discarded: its task finds the row no longer building and stops). ``options`` go to the step's plan builder
    (existing_billing: ``addition_ids``). The pages poll the row, so the state survives a cache flush and any
    number of web processes."""
    with transaction.atomic():
        RepairPlan.objects.filter(tenant=tenant, step=step, status=RepairPlan.Status.BUILDING).update(
            status=RepairPlan.Status.DISCARDED, finished_at=timezone.now()
        )
        plan = RepairPlan.objects.create(
            tenant=tenant,
            step=step,
            status=RepairPlan.Status.BUILDING,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
    tenant_id, actor_id, plan_id = tenant.pk, getattr(actor, "pk", None), plan.pk
    transaction.on_commit(lambda: build_plan_task.delay(tenant_id, step, actor_id, options, plan_id=plan_id))
    return plan


def create_plan(
    tenant: Tenant,
    step: str,
    *,
    actor=None,
    options: dict | None = None,
    building: RepairPlan | None = None,
) -> RepairPlan | None:
    """Ask ConnectWise what the step needs and store it as a draft plan (replacing older drafts of the step).
    Called from the worker (views enqueue it through ``request_plan``) and the CLI, because it reads the partner's
    ConnectWise. With ``building`` (the plan ``request_plan`` stored) that row becomes the draft, and None is
    returned when it is no longer building (superseded, or closed by the watchdog): nothing is stored then.

    Raises ``PlanError`` (no connection, host refused) and the ConnectWise error of a failed read."""
    try:
        client = tenant_client(tenant)
    except NotConnectable as exc:
        raise PlanError(str(exc)) from None
    with client:
        if step == cw_plans.COMBINED:
            # "Fix everything that can be fixed" (issue 18): one plan across the repairable steps.
            report = cw_plans.build_combined_report(client, choices_for(tenant))
        else:
            report = cw_plans.build_plan_report(client, choices_for(tenant), step, options)
    operations = report.operations
    with transaction.atomic():
        if building is None:
            plan = RepairPlan.objects.create(tenant=tenant, step=step, created_by=actor)
        elif RepairPlan.objects.filter(pk=building.pk, status=RepairPlan.Status.BUILDING).update(
            status=RepairPlan.Status.DRAFT
        ):
            plan = building
            plan.status = RepairPlan.Status.DRAFT
        else:
            return None
        RepairPlan.objects.filter(tenant=tenant, step=step, status=RepairPlan.Status.DRAFT).exclude(
            pk=plan.pk
        ).update(status=RepairPlan.Status.DISCARDED)
        RepairOperation.objects.bulk_create(
            [RepairOperation.from_planned(plan, seq, op) for seq, op in enumerate(operations, start=1)]
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


def fail_build(plan_id: int, error: str) -> bool:
    """building -> build_failed with ``error`` (words for the partner admin, at most 2,000 characters). False when
    the plan was no longer building (built, superseded or already closed)."""
    return bool(
        RepairPlan.objects.filter(pk=plan_id, status=RepairPlan.Status.BUILDING).update(
            status=RepairPlan.Status.BUILD_FAILED, error=error[:2000], finished_at=timezone.now()
        )
    )


def close_stuck_builds(now=None) -> int:
    """Watchdog: plans still "building" ``BUILD_TIMEOUT`` after they were asked for become build_failed, with a
    message that says so (their worker died, or the queue never reached them). Returns how many."""
    now = now or timezone.now()
    minutes = round(BUILD_TIMEOUT.total_seconds() / 60)
    return RepairPlan.objects.filter(
        status=RepairPlan.Status.BUILDING, created_at__lt=now - BUILD_TIMEOUT
    ).update(
        status=RepairPlan.Status.BUILD_FAILED,
        error=(
            f"Building the plan did not finish within {minutes} minutes: the background worker may be busy or "
            "stopped. Nothing was changed in your ConnectWise; try again."
        ),
        finished_at=now,
    )


@shared_task(name="onboarding.build_plan", soft_time_limit=settings.CHECK_RUN_TIME_LIMIT)
def build_plan_task(
    tenant_id: int,
    step: str,
    actor_id: int | None = None,
    options: dict | None = None,
    plan_id: int | None = None,
) -> str:
    """The Celery task that builds the plan a partner asked for (``request_plan`` enqueues it with the id of the
    "building" plan; a message without ``plan_id``, enqueued by a release before plans had that state, builds a
    new draft). The registered name stays "onboarding.build_plan": messages may be in flight across a deploy.

    Returns the plan's uuid; "error" (the plan is build_failed with the reason); "skipped" (the plan was no longer
    building: superseded, closed by the watchdog, or this is a second delivery); "gone" (tenant deleted)."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "gone"
    building = None
    if plan_id is not None:
        building = RepairPlan.objects.filter(
            pk=plan_id, tenant=tenant, status=RepairPlan.Status.BUILDING
        ).first()
        if building is None:
            return "skipped"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        plan = create_plan(tenant, step, actor=actor, options=options, building=building)
    except SoftTimeLimitExceeded:
        error = "Building the plan took longer than its time limit."
    except Exception as exc:
        log.warning("building a %s plan for tenant %s failed: %s", step, tenant_id, type(exc).__name__)
        error = str(exc)[:500]
    else:
        return str(plan.uuid) if plan is not None else "skipped"
    if plan_id is not None:
        fail_build(plan_id, error)
    return "error"


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


ANOTHER_APPLYING = (
    "Another set of changes is being applied to this ConnectWise right now. Wait until it has finished "
    "(its plan page shows the progress), then approve this plan."
)


def approve(plan: RepairPlan, *, by) -> bool:
    """Draft -> approved, once. Returns False when it was not a draft any more (a double click, someone else);
    raises PlanError while another plan of the tenant applies (``RepairPlan.another_applying``: one at a time)."""
    now = timezone.now()
    with transaction.atomic():
        if plan.another_applying():
            raise PlanError(ANOTHER_APPLYING)
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
    again) and re-reads before a PATCH. Returns False when the plan was not failed (a double click); raises
    PlanError while another plan of the tenant is applying."""
    with transaction.atomic():
        if plan.another_applying():
            raise PlanError(ANOTHER_APPLYING)
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
    created_ids: dict[int, int] = {
        op.seq: op.result["id"]
        for op in plan.operations.filter(
            status__in=[RepairOperation.Status.DONE, RepairOperation.Status.ALREADY]
        )
        if isinstance(op.result, dict) and "id" in op.result
    }
    failed = None
    with tenant_client(tenant) as client:
        for op in plan.operations.filter(status=RepairOperation.Status.PENDING).order_by("seq"):
            try:
                result = cw_plans.apply_operation(client, op.as_planned(), created_ids)
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
    "BUILD_TIMEOUT",
    "PlanError",
    "request_plan",
    "create_plan",
    "build_plan_task",
    "fail_build",
    "close_stuck_builds",
    "approve",
    "enqueue_apply",
    "claim_for_apply",
    "reapply",
    "apply",
]
