"""Celery tasks. Ids only in arguments (never keys); each task reloads its objects, returns early when they are
gone, calls one domain function and is safe to run twice.
"""

from __future__ import annotations

from celery import shared_task

from . import alerts, mail, repairs, retention, runs
from .alerts import send_drift_alerts
from .billing import build_preview
from .delivery import MAIL_RETRY
from .repairs import apply_plan, build_plan_task
from .runs import run_checks
from .support_accounts import send_support_welcome

PRUNE_MAX_RUNS_PER_TICK = 50_000


@shared_task(name="onboarding.watchdog")
def watchdog() -> int:
    """Beat, every 2 minutes: close runs stuck past their time limit (``runs.close_stuck_runs``), close plan builds
    that never answered as build failed (``repairs.close_stuck_builds``), resume plans whose worker died mid-apply
    (``repairs.resume_stuck_plans``) and re-enqueue drift e-mails whose retries ran
    out (never drop an alert). Returns how many runs were closed."""
    closed = runs.close_stuck_runs()
    repairs.close_stuck_builds()
    repairs.resume_stuck_plans()
    for tenant_id in alerts.undelivered_tenants():
        send_drift_alerts.delay(tenant_id)  # the task's own retries ran out: try again, never drop the alert
    return closed


@shared_task(name="onboarding.schedule_verifications")
def schedule_verifications() -> int:
    """Beat, every minute: ``runs.start_due_runs`` (scheduled re-checks of connected tenants that are due)."""
    return runs.start_due_runs()


@shared_task(name="onboarding.send_invitation", **MAIL_RETRY)
def send_invitation(invitation_id: int) -> str:
    return mail.send_invitation(invitation_id)


@shared_task(name="onboarding.send_password_reset", **MAIL_RETRY)
def send_password_reset(user_id: int) -> str:
    return mail.send_password_reset(user_id)


@shared_task(name="onboarding.send_signup_mail", **MAIL_RETRY)
def send_signup_mail(user_id: int, kind: str) -> str:
    """``kind`` "confirm": the link that activates a new account; "exists": the notice to an account's owner."""
    if kind == "confirm":
        return mail.send_signup_confirmation(user_id)
    return mail.send_signup_notice(user_id)


@shared_task(name="onboarding.prune_history")
def prune_history() -> int:
    """Beat, hourly: delete old runs past ``RUN_RETENTION_DAYS`` (see ``retention.prune_runs``), at most
    ``PRUNE_MAX_RUNS_PER_TICK`` a tick. Returns how many runs were deleted."""
    return retention.prune_runs(max_runs=PRUNE_MAX_RUNS_PER_TICK).runs_deleted


__all__ = [
    "apply_plan",
    "build_plan_task",
    "build_preview",
    "prune_history",
    "run_checks",
    "schedule_verifications",
    "send_drift_alerts",
    "send_invitation",
    "send_password_reset",
    "send_signup_mail",
    "send_support_welcome",
    "watchdog",
]
