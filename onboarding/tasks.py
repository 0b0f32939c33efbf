"""Celery tasks. Ids only in arguments (never keys); each task reloads its objects, returns early when they are
gone, calls one domain function and is safe to run twice.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from . import alerts, billing, repairs, retention, runs
from .models import CheckRun, RepairPlan, Tenant

log = logging.getLogger(__name__)

PRUNE_MAX_RUNS_PER_TICK = 50_000


def _redelivered(task) -> bool:
    """True when the broker delivers this message again (its earlier worker died before acknowledging it)."""
    return bool((getattr(task.request, "delivery_info", None) or {}).get("redelivered"))


@shared_task(
    bind=True,
    name="onboarding.run_checks",
    soft_time_limit=settings.CHECK_RUN_TIME_LIMIT,
    time_limit=settings.CHECK_RUN_TIME_LIMIT + 30,
)
def run_checks(self, run_id: int) -> str:
    run = runs.claim(run_id, redelivered=_redelivered(self))
    if run is None:
        return "skipped"
    try:
        run = runs.execute_run(run)
    except SoftTimeLimitExceeded:
        runs.fail(run, "The check took longer than its time limit and was stopped.")
    except Exception as exc:  # a bug must not leave the run "running"
        log.exception("run %s crashed", run.uuid)
        runs.fail(run, f"The check crashed: {type(exc).__name__}. Support has the details in the worker log.")
    return run.status


@shared_task(name="onboarding.build_plan", soft_time_limit=settings.CHECK_RUN_TIME_LIMIT)
def build_plan(tenant_id: int, step: str, actor_id: int | None = None, options: dict | None = None) -> str:
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "gone"
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        plan = repairs.build_plan(tenant, step, actor=actor, options=options)
    except Exception as exc:
        log.warning("building a %s plan for tenant %s failed: %s", step, tenant_id, type(exc).__name__)
        from django.core.cache import cache  # noqa: PLC0415

        cache.set(f"plan-error:{tenant_id}:{step}", str(exc)[:500], 600)
        return "error"
    return str(plan.uuid)


@shared_task(
    bind=True,
    name="onboarding.apply_plan",
    soft_time_limit=settings.PLAN_APPLY_TIME_LIMIT,
    time_limit=settings.PLAN_APPLY_TIME_LIMIT + 30,
)
def apply_plan(self, plan_id: int) -> str:
    plan = repairs.claim_for_apply(plan_id, redelivered=_redelivered(self))
    if plan is None:
        return "skipped"
    try:
        plan = repairs.apply(plan)
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


@shared_task(name="onboarding.watchdog")
def watchdog() -> int:
    """Close runs stuck past their time limit and resume plans whose worker died mid-apply."""
    closed = runs.close_stuck_runs()
    stale = timezone.now() - timedelta(seconds=settings.PLAN_APPLY_TIME_LIMIT + 60)
    for plan_id in RepairPlan.objects.filter(
        status=RepairPlan.Status.APPLYING, started_at__lt=stale
    ).values_list("pk", flat=True):
        apply_plan.delay(plan_id)
    for tenant_id in alerts.undelivered_tenants():
        send_drift_alerts.delay(tenant_id)  # the task's own retries ran out: try again, never drop the alert
    return closed


@shared_task(name="onboarding.schedule_verifications")
def schedule_verifications() -> int:
    """Beat, every minute: start scheduled re-checks for connected tenants that are due, with a cap on how many
    scheduled runs are in flight; each tenant's next check is spread over the interval."""
    now = timezone.now()
    interval = timedelta(hours=settings.VERIFY_INTERVAL_HOURS)
    # A tenant without a slot that was checked recently (it just connected, say) is due one interval after that
    # check, not now: otherwise every newly connected tenant is checked twice and the schedule bunches up.
    Tenant.objects.connected().filter(next_check_at__isnull=True, last_checked_at__gt=now - interval).update(
        next_check_at=F("last_checked_at") + interval
    )
    alerts.notify_stale(now)
    in_flight = CheckRun.objects.filter(status__in=CheckRun.ACTIVE, trigger=CheckRun.Trigger.SCHEDULE).count()
    room = max(0, settings.VERIFY_MAX_CONCURRENT - in_flight)
    if not room:
        return 0
    due = (
        Tenant.objects.connected()
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .exclude(runs__status__in=CheckRun.ACTIVE)
        # Longest overdue first; NULLs first on every database (SQLite and PostgreSQL disagree by default).
        .order_by(F("next_check_at").asc(nulls_first=True), F("last_checked_at").asc(nulls_first=True), "pk")[
            :room
        ]
    )
    started = 0
    for tenant in due:
        # existing_billing costs a read per agreement: at most every EXISTING_BILLING_INTERVAL_DAYS here.
        steps = billing.scheduled_steps(tenant, now)
        _, created = runs.start_run(tenant, trigger=CheckRun.Trigger.SCHEDULE, steps=steps)
        # A little jitter either way keeps tenants from drifting back into the same minute over the days.
        jitter = timedelta(seconds=random.uniform(-0.05, 0.05) * interval.total_seconds())
        Tenant.objects.filter(pk=tenant.pk).update(next_check_at=now + interval + jitter)
        started += int(created)
    return started


@shared_task(name="onboarding.build_preview", soft_time_limit=settings.CHECK_RUN_TIME_LIMIT)
def build_preview(preview_id: int) -> str:
    """Build a stored first-sync preview (reads ConnectWise, writes nothing there)."""
    from .models import SyncPreview  # noqa: PLC0415

    preview = SyncPreview.objects.select_related("tenant").filter(pk=preview_id).first()
    if preview is None:
        return "gone"
    try:
        return billing.execute_preview(preview).status
    except Exception as exc:  # a bug must not leave the preview "running"
        log.exception("preview %s crashed", preview.uuid)
        SyncPreview.objects.filter(pk=preview.pk).update(
            status=SyncPreview.Status.ERROR, error=f"The preview crashed: {type(exc).__name__}"
        )
        return "error"


# E-mail tasks: ids only (never a link or token), retried with exponential backoff and jitter; a failure is also
# recorded on its row (invitation, drift alert) so that people see it while the retries go on.
MAIL_RETRY = {
    "autoretry_for": (Exception,),
    "retry_backoff": 30,
    "retry_backoff_max": 3600,
    "retry_jitter": True,
    "max_retries": settings.MAIL_MAX_RETRIES,
    "soft_time_limit": 120,
}


@shared_task(name="onboarding.send_drift_alerts", **MAIL_RETRY)
def send_drift_alerts(tenant_id: int) -> int:
    """E-mail the tenant's open drift alerts not yet notified (alerts.notify_drift). A failure is recorded on the
    alerts and retried here; after the last retry, ``watchdog`` re-enqueues it (see alerts.retry_undelivered)."""
    return alerts.notify_drift(tenant_id)


@shared_task(name="onboarding.send_invitation", **MAIL_RETRY)
def send_invitation(invitation_id: int) -> str:
    from . import mail  # noqa: PLC0415

    return mail.send_invitation(invitation_id)


@shared_task(name="onboarding.send_password_reset", **MAIL_RETRY)
def send_password_reset(user_id: int) -> str:
    from . import mail  # noqa: PLC0415

    return mail.send_password_reset(user_id)


@shared_task(name="onboarding.send_signup_mail", **MAIL_RETRY)
def send_signup_mail(user_id: int, kind: str) -> str:
    """``kind`` "confirm": the link that activates a new account; "exists": the notice to an account's owner."""
    from . import mail  # noqa: PLC0415

    if kind == "confirm":
        return mail.send_signup_confirmation(user_id)
    return mail.send_signup_notice(user_id)


@shared_task(name="onboarding.prune_history")
def prune_history() -> int:
    """Beat, hourly: delete old runs past ``RUN_RETENTION_DAYS`` (see ``retention.prune_runs``), at most
    ``PRUNE_MAX_RUNS_PER_TICK`` a tick. Returns how many runs were deleted."""
    return retention.prune_runs(max_runs=PRUNE_MAX_RUNS_PER_TICK).runs_deleted
